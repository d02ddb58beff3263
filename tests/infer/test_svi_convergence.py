"""SVI converges to analytic posteriors on conjugate models (stated tolerances)."""

from __future__ import annotations

import math
from typing import Callable

import torch

import ember
import ember.distributions as dist
from ember.distributions import constraints
from ember.infer import SVI, Trace_ELBO
from ember.optim import Adam

DATA = torch.tensor([0.9, 1.4, 0.3, 1.1, 2.0, 0.7, 1.6, 1.2, 0.8, 1.5])
FLIPS = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])


def normal_model(data: torch.Tensor) -> None:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    with ember.plate("data", len(data)):
        ember.sample("x", dist.Normal(z, 1.0), obs=data)


def normal_guide(data: torch.Tensor) -> None:
    loc = ember.param("loc", torch.tensor(0.0))
    scale = ember.param("scale", torch.tensor(1.0), constraint=constraints.positive)
    ember.sample("z", dist.Normal(loc, scale))


def beta_model(flips: torch.Tensor) -> None:
    p = ember.sample("p", dist.Beta(2.0, 2.0))
    with ember.plate("flips", len(flips)):
        ember.sample("f", dist.Bernoulli(p), obs=flips)


def beta_guide(flips: torch.Tensor) -> None:
    a = ember.param("a", torch.tensor(2.0), constraint=constraints.positive)
    b = ember.param("b", torch.tensor(2.0), constraint=constraints.positive)
    ember.sample("p", dist.Beta(a, b))


def _fit(model: Callable[..., None], guide: Callable[..., None], data: torch.Tensor, steps: int, lr: float) -> None:
    svi = SVI(model, guide, Adam({"lr": lr}), loss=Trace_ELBO(num_particles=16, vectorize_particles=True))
    for _ in range(steps):
        svi.step(data)


def test_normal_normal_posterior_within_tolerance() -> None:
    # Posterior: N(sum(x) / (n + 1), 1 / sqrt(n + 1)).
    _fit(normal_model, normal_guide, DATA, steps=600, lr=0.05)
    n = len(DATA)
    assert abs(ember.param("loc").item() - DATA.sum().item() / (n + 1)) < 0.05
    assert abs(ember.param("scale").item() - 1 / math.sqrt(n + 1)) < 0.05


def test_beta_bernoulli_posterior_within_tolerance() -> None:
    # Posterior: Beta(2 + heads, 2 + tails) = Beta(9, 5); compare its mean and std.
    _fit(beta_model, beta_guide, FLIPS, steps=800, lr=0.05)
    a, b = ember.param("a").item(), ember.param("b").item()
    post_a, post_b = 2 + FLIPS.sum().item(), 2 + (1 - FLIPS).sum().item()
    mean, post_mean = a / (a + b), post_a / (post_a + post_b)
    std = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    post_std = math.sqrt(post_a * post_b / ((post_a + post_b) ** 2 * (post_a + post_b + 1)))
    assert abs(mean - post_mean) < 0.03
    assert abs(std - post_std) < 0.03

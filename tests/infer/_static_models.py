"""Static models for the compiled-step tests: each a ``(model, guide, args, elbo options)`` case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints
from ember.infer.autoguide import AutoDelta, AutoDiagonalNormal, AutoMultivariateNormal, AutoNormal
from ember.nn import PyroModule, PyroSample

Case = tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _data(n: int = 40, d: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5][:d]) + 0.3 * torch.randn(n, generator=g)
    return x, y


def regression(x: torch.Tensor, y: torch.Tensor) -> None:
    w = ember.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    sigma = ember.sample("sigma", dist.LogNormal(0.0, 1.0))
    with ember.plate("data", len(x)):
        ember.sample("y", dist.Normal(x @ w, sigma), obs=y)


def mean_field_guide(x: torch.Tensor, y: torch.Tensor) -> None:
    loc = ember.param("w_loc", torch.zeros(x.shape[1]))
    scale = ember.param("w_scale", torch.ones(x.shape[1]), constraint=constraints.positive)
    ember.sample("w", dist.Normal(loc, scale).to_event(1))
    s_loc = ember.param("s_loc", torch.tensor(0.0))
    s_scale = ember.param("s_scale", torch.tensor(0.5), constraint=constraints.interval(0.01, 2.0))  # type: ignore[no-untyped-call]  # torch's constraint factories are unannotated
    ember.sample("sigma", dist.LogNormal(s_loc, s_scale))


def subsampled(x: torch.Tensor, y: torch.Tensor, batch: int = 8) -> None:
    w = ember.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    with ember.plate("data", len(x), subsample_size=batch) as idx:
        ember.sample("y", dist.Normal(x[idx] @ w, 0.5), obs=y[idx])


def subsampled_guide(x: torch.Tensor, y: torch.Tensor, batch: int = 8) -> None:
    loc = ember.param("w_loc", torch.zeros(x.shape[1]))
    scale = ember.param("w_scale", torch.ones(x.shape[1]), constraint=constraints.positive)
    ember.sample("w", dist.Normal(loc, scale).to_event(1))


def masked_scaled(x: torch.Tensor, y: torch.Tensor) -> None:
    w = ember.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    mask = torch.arange(len(x)) % 3 != 0
    with ember.plate("data", len(x)), poutine.scale(scale=2.5):
        ember.sample("y", dist.Normal(x @ w, 0.5).mask(mask), obs=y)


def masked_guide(x: torch.Tensor, y: torch.Tensor) -> None:
    subsampled_guide(x, y)


def local_latents(x: torch.Tensor, y: torch.Tensor) -> None:
    mu = ember.sample("mu", dist.Normal(0.0, 3.0))
    with ember.plate("data", len(y)):
        z = ember.sample("z", dist.Normal(mu, 1.0))
        ember.sample("y", dist.Normal(z, 0.5), obs=y)


def amortized_guide() -> Callable[[torch.Tensor, torch.Tensor], None]:
    """A guide whose local latents come from an encoder registered with ``ember.module``."""
    torch.manual_seed(3)
    encoder = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))

    def guide(x: torch.Tensor, y: torch.Tensor) -> None:
        ember.sample("mu", dist.Normal(ember.param("mu_loc", torch.tensor(0.0)), 0.3))
        out = ember.module("encoder", encoder)(y.unsqueeze(-1))
        with ember.plate("data", len(y)):
            ember.sample("z", dist.Normal(out[:, 0], out[:, 1].exp()))

    return guide


def discrete(x: torch.Tensor, y: torch.Tensor) -> None:
    p = ember.sample("p", dist.Beta(2.0, 2.0))
    with ember.plate("data", len(y)):
        c = ember.sample("c", dist.Bernoulli(p))
        ember.sample("y", dist.Normal(c * 2.0 - 1.0, 1.0), obs=y)


def discrete_guide(x: torch.Tensor, y: torch.Tensor) -> None:
    a = ember.param("a", torch.tensor(2.0), constraint=constraints.positive)
    ember.sample("p", dist.Beta(a, 2.0))
    probs = ember.param("probs", torch.full((len(y),), 0.5), constraint=constraints.unit_interval)
    with ember.plate("data", len(y)):
        ember.sample("c", dist.Bernoulli(probs))


class BNN(PyroModule):
    """A 3-8-1 Bayesian neural net with Normal priors on every weight."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: Any = cast(Any, PyroModule[torch.nn.Linear](3, 8))
        self.hidden.weight = PyroSample(dist.Normal(0.0, 1.0).expand([8, 3]).to_event(2))
        self.hidden.bias = PyroSample(dist.Normal(0.0, 1.0).expand([8]).to_event(1))
        self.out: Any = cast(Any, PyroModule[torch.nn.Linear](8, 1))
        self.out.weight = PyroSample(dist.Normal(0.0, 1.0).expand([1, 8]).to_event(2))
        self.out.bias = PyroSample(dist.Normal(0.0, 1.0).expand([1]).to_event(1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mean: torch.Tensor = self.out(torch.tanh(self.hidden(x))).squeeze(-1)
        with ember.plate("data", len(x)):
            ember.sample("y", dist.Normal(mean, 0.5), obs=y)
        return mean


def cases() -> dict[str, Case]:
    """Fresh cases (autoguides and modules are built anew on each call)."""
    x, y = _data()
    bnn = BNN()
    return {
        "mean_field": (regression, mean_field_guide, (x, y), {}),
        "subsample": (subsampled, subsampled_guide, (x, y), {}),
        "mask_scale": (masked_scaled, masked_guide, (x, y), {}),
        "local_amortized": (local_latents, amortized_guide(), (x, y), {}),
        "score_function": (discrete, discrete_guide, (x, y), {}),
        "particles_vectorized": (local_latents, amortized_guide(), (x, y), {"num_particles": 3, "vectorize_particles": True}),
        "particles_sequential": (subsampled, subsampled_guide, (x, y), {"num_particles": 2}),
        "auto_normal": (regression, AutoNormal(regression), (x, y), {}),
        "auto_diagonal": (regression, AutoDiagonalNormal(regression), (x, y), {}),
        "auto_multivariate": (regression, AutoMultivariateNormal(regression), (x, y), {}),
        "auto_delta": (regression, AutoDelta(regression), (x, y), {}),
        "bnn_pyro_module": (bnn, AutoNormal(bnn), (x, y), {}),
    }

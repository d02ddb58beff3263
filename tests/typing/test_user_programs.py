"""Three ordinary user programs, written as a Pyro user would, that must type-check under
``mypy --strict`` with no cast and no ignore (CI runs mypy over ``tests/``; the same file is
also checked from outside the checkout by ``tests/test_installed_typing.py``).

They also run under pytest, so the static types are checked against the run-time values.
"""

from __future__ import annotations

import math

import torch
from typing_extensions import assert_type

import ember as pyro
import ember.distributions as dist
from ember import poutine
from ember.infer import SVI, Predictive, Trace_ELBO
from ember.infer.autoguide import AutoNormal
from ember.optim import Adam
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample

# --- 1. A hierarchical model fitted with SVI --------------------------------------------


def hierarchical(group: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfNormal(2.0))
    with pyro.plate("groups", 3):
        theta = pyro.sample("theta", dist.Normal(mu, tau))
    with pyro.plate("data", group.shape[0]) as idx:
        assert_type(idx, torch.Tensor)
        return pyro.sample("y", dist.Normal(theta[group[idx]], 1.0), obs=y)


def hierarchical_guide(group: torch.Tensor, y: torch.Tensor | None = None) -> None:
    loc = pyro.param("loc", torch.tensor(0.0))
    scale = pyro.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    pyro.sample("mu", dist.Normal(loc, scale))
    pyro.sample("tau", dist.LogNormal(0.0, 0.5))
    with pyro.plate("groups", 3):
        pyro.sample("theta", dist.Normal(loc, 1.0))


def fit_hierarchical(steps: int = 20) -> list[float]:
    pyro.clear_param_store()
    group = torch.arange(12) % 3
    y = torch.randn(12) + group.float()
    svi = SVI(hierarchical, hierarchical_guide, Adam({"lr": 0.05}), Trace_ELBO())
    losses = [svi.step(group, y) for _ in range(steps)]
    assert_type(losses, list[float])
    auto = AutoNormal(hierarchical)
    latents = auto(group, y)
    assert_type(latents, dict[str, torch.Tensor])
    predictive = Predictive(hierarchical, guide=auto, num_samples=4)
    samples = predictive(group)
    assert_type(samples, dict[str, torch.Tensor])
    assert samples["y"].shape == (4, 12)
    return losses


def test_hierarchical_svi_runs_with_its_static_types() -> None:
    losses = fit_hierarchical()
    assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)


# --- 2. An importance sampler written from trace, replay and block ----------------------


def coin_model(flips: torch.Tensor) -> None:
    p = pyro.sample("p", dist.Beta(2.0, 2.0))
    with pyro.plate("flips", flips.shape[0]):
        pyro.sample("obs", dist.Bernoulli(p), obs=flips)


def coin_proposal(flips: torch.Tensor) -> None:
    pyro.sample("p", dist.Beta(1.0, 1.0))


def log_weights_of(flips: torch.Tensor, num_samples: int = 300) -> torch.Tensor:
    log_weights: list[torch.Tensor] = []
    for _ in range(num_samples):
        guide_trace: Trace = poutine.trace(poutine.block(coin_proposal, expose=["p"])).get_trace(flips)
        model_trace = poutine.trace(poutine.replay(coin_model, trace=guide_trace)).get_trace(flips)
        log_weight = model_trace.log_prob_sum() - guide_trace.log_prob_sum()
        assert_type(log_weight, torch.Tensor)
        site = model_trace.nodes["p"]
        assert site["fn"].batch_shape == torch.Size() and site["fn"].event_shape == torch.Size()
        assert_type(site["fn"].log_prob(site["value"]), torch.Tensor)
        log_weights.append(log_weight)
    return torch.stack(log_weights)


def test_importance_sampler_estimates_the_beta_bernoulli_evidence() -> None:
    torch.manual_seed(0)
    flips = torch.tensor([1.0, 1.0, 0.0, 1.0])
    # p(flips) = B(2 + 3, 2 + 1) / B(2, 2) for the Beta(2, 2) prior.
    exact = math.lgamma(5) + math.lgamma(3) - math.lgamma(8) - (2 * math.lgamma(2) - math.lgamma(4))
    weights = log_weights_of(flips).exp()
    estimate = float(weights.mean().log())
    # Delta method: the standard error of log(mean w) is std(w) / (mean(w) sqrt(n)).
    std_error = float(weights.std() / weights.mean()) / math.sqrt(weights.numel())
    assert abs(estimate - exact) < 4 * std_error


# --- 3. A logging messenger -------------------------------------------------------------


class LoggingMessenger(Messenger):
    """Records every sample site's name, shape and log density as it is computed."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, tuple[int, ...], float]] = []

    def _pyro_post_sample(self, msg: Message) -> None:
        if site_is_subsample(msg):
            return
        value: torch.Tensor = msg["value"]
        log_prob = msg["fn"].log_prob(value).sum()
        self.log.append((msg["name"] or "", tuple(value.shape), float(log_prob)))


def test_logging_messenger_sees_every_sample_site() -> None:
    with LoggingMessenger() as logger:
        hierarchical(torch.arange(6) % 3)
    assert [name for name, _, _ in logger.log] == ["mu", "tau", "theta", "y"]
    assert logger.log[2][1] == (3,) and logger.log[3][1] == (6,)
    assert all(math.isfinite(lp) for _, _, lp in logger.log)

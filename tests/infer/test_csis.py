"""CSIS: a trained amortised proposal that reduces importance-weight variance, and Pyro's losses."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import CSIS, Importance
from ember.optim import ClippedAdam
from tests.parity._backends import Backend, run_both

X = torch.tensor(1.5)
OBS = {"x": X}


def model(observations: dict[str, torch.Tensor] = OBS) -> None:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    ember.sample("x", dist.Normal(z, 0.5), obs=observations["x"])


def guide(observations: dict[str, torch.Tensor] = OBS) -> None:
    slope = ember.param("slope", torch.tensor(0.0))
    scale = ember.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    ember.sample("z", dist.Normal(slope * observations["x"], scale))


def _log_weight_variance(proposal: Any) -> float:
    posterior = Importance(model, proposal, num_samples=200).run(observations=OBS)
    return torch.stack(posterior.log_weights).var().item()


def test_the_compiled_proposal_reduces_the_importance_weight_variance() -> None:
    csis = CSIS(model, guide, ClippedAdam({"lr": 0.1, "lrd": 0.98}), training_batch_size=6, num_inference_samples=50)
    prior_variance = _log_weight_variance(None)
    first = csis.validation_loss()
    for _ in range(120):
        csis.step()
    # q(z | x) = N(0.8 x, sqrt(0.2)) is the exact posterior: constant weights.
    assert ember.param("slope").item() == pytest.approx(0.8, abs=0.1)
    assert ember.param("scale").item() == pytest.approx(0.2**0.5, abs=0.1)
    assert csis.validation_loss() < first
    assert _log_weight_variance(guide) < 0.05 * prior_variance
    posterior = csis.run(observations=OBS)
    assert len(posterior.exec_traces) == 50


def _csis_program(b: Backend) -> tuple[float, float, torch.Tensor]:
    def model(observations: Any = {"x": torch.zeros(3)}) -> None:
        z = b.pyro.sample("z", b.dist.Normal(0.0, 1.0))
        with b.pyro.plate("N", 3):
            b.pyro.sample("x", b.dist.Normal(z, 1.0), obs=observations["x"])

    def guide(observations: Any = {"x": torch.zeros(3)}) -> None:
        w = b.pyro.param("w", torch.tensor(0.3))
        b.pyro.sample("z", b.dist.Normal(w * observations["x"].sum(), 1.0))

    csis = b.infer.CSIS(model, guide, b.pyro.optim.Adam({"lr": 0.1}), training_batch_size=3, validation_batch_size=4)
    step_loss = csis.step()
    csis.step()
    return step_loss, csis.validation_loss(), b.pyro.param("w").detach().clone()


def test_losses_and_updates_equal_pyros_on_the_same_seed() -> None:
    ours, theirs = run_both(_csis_program, seed=7)
    assert ours[:2] == pytest.approx(theirs[:2], rel=1e-5)
    assert torch.allclose(ours[2], theirs[2], rtol=1e-5)

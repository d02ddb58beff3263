"""SMCFilter: the Kalman filter's likelihood and filtering mean on a linear-Gaussian model, Pyro's draws, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import SMCFilter
from ember.infer.smcfilter import SMCFailed, SMCState
from tests.parity._backends import Backend, run_both

A, Q, R = 0.9, 0.5, 0.4  # z_t = A z_{t-1} + N(0, Q), y_t = z_t + N(0, R), z_0 ~ N(0, 1)
YS = torch.tensor([0.3, 1.1, 0.8, -0.2, 0.5, 1.6, 1.0, 0.1])


class LinearGaussian:
    def init(self, state: SMCState) -> None:
        state["z"] = ember.sample("z_init", dist.Normal(0.0, 1.0))

    def step(self, state: SMCState, y: torch.Tensor) -> None:
        state["z"] = ember.sample("z", dist.Normal(A * state["z"], Q**0.5))
        ember.sample("y", dist.Normal(state["z"], R**0.5), obs=y)


class Bootstrap:
    """The prior transition as proposal; reads the state, never writes it."""

    def init(self, state: SMCState) -> None:
        ember.sample("z_init", dist.Normal(0.0, 1.0))

    def step(self, state: SMCState, y: torch.Tensor) -> None:
        ember.sample("z", dist.Normal(A * state["z"], Q**0.5))


def _kalman() -> tuple[float, float, float]:
    """The exact ``log p(y_1..T)`` and the filtering mean and variance of ``z_T``."""
    mean, var, log_lik = 0.0, 1.0, 0.0
    for y in YS.tolist():
        mean, var = A * mean, A * A * var + Q
        s = var + R
        log_lik += -0.5 * (math.log(2 * math.pi * s) + (y - mean) ** 2 / s)
        gain = var / s
        mean, var = mean + gain * (y - mean), (1 - gain) * var
    return log_lik, mean, var


def _filter(num_particles: int) -> SMCFilter:
    smc = SMCFilter(LinearGaussian(), Bootstrap(), num_particles=num_particles, max_plate_nesting=0)
    smc.init()
    for y in YS:
        smc.step(y)
    return smc


def test_log_evidence_and_filtering_mean_match_the_kalman_filter() -> None:
    log_lik, mean, var = _kalman()
    n, runs = 400, 12
    estimates, means = [], []
    for _ in range(runs):
        smc = _filter(n)
        estimates.append(smc.get_log_evidence())
        weights = smc.state._log_weights.softmax(-1)
        means.append((weights * smc.state["z"]).sum())
    logz = torch.stack(estimates)
    se = logz.std() / runs**0.5
    # log Z-hat is about normal with E[Z-hat] = Z, so E[log Z-hat] = log Z - Var/2.
    assert float(logz.mean() + logz.var() / 2) == pytest.approx(log_lik, abs=4 * se.item() + 0.02)
    # Each run's mean has a Monte Carlo error of about sqrt(var / n) (more after resampling).
    assert float(torch.stack(means).mean()) == pytest.approx(mean, abs=4 * (2 * var / (n * runs)) ** 0.5)


def test_resampling_happens_below_the_ess_threshold_and_resets_the_weights() -> None:
    smc = SMCFilter(LinearGaussian(), Bootstrap(), num_particles=50, max_plate_nesting=0, ess_threshold=1.0)
    smc.init()
    smc.step(torch.tensor(3.0))  # an unlikely observation: ESS < 50, so it resamples
    assert torch.equal(smc.state._log_weights, torch.zeros(50))
    smc = SMCFilter(LinearGaussian(), Bootstrap(), num_particles=50, max_plate_nesting=0, ess_threshold=1e-6)
    smc.init()
    smc.step(torch.tensor(3.0))
    assert torch.allclose(smc.state._log_weights.logsumexp(-1), torch.tensor(0.0), atol=1e-6)
    assert smc.state._log_weights.std() > 0


def _smc_program(b: Backend) -> torch.Tensor:
    class Model:
        def init(self, state: Any) -> None:
            state["z"] = b.pyro.sample("z_init", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))

        def step(self, state: Any, y: torch.Tensor) -> None:
            state["z"] = b.pyro.sample("z", b.dist.Normal(0.9 * state["z"], 0.7).to_event(1))
            b.pyro.sample("y", b.dist.Normal(state["z"].sum(-1), 0.6), obs=y)

    class Guide:
        def init(self, state: Any) -> None:
            b.pyro.sample("z_init", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))

        def step(self, state: Any, y: torch.Tensor) -> None:
            b.pyro.sample("z", b.dist.Normal(0.9 * state["z"] + 0.1 * y, 0.7).to_event(1))

    smc = b.infer.SMCFilter(Model(), Guide(), num_particles=30, max_plate_nesting=0, ess_threshold=0.7)
    smc.init()
    for y in YS[:5]:
        smc.step(y)
    return torch.cat([smc.state["z"], smc.state._log_weights[:, None]], -1)


def test_particles_and_weights_equal_pyros_on_the_same_seed() -> None:
    ours, theirs = run_both(_smc_program, seed=8)
    assert ours.shape == (30, 3)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_particles", [0, -3])
def test_fewer_than_one_particle_is_refused(num_particles: int) -> None:
    with pytest.raises(AssertionError, match=f"num_particles must be a positive int, got {num_particles}"):
        SMCFilter(LinearGaussian(), Bootstrap(), num_particles=num_particles, max_plate_nesting=0)


def test_the_guide_cannot_write_the_state_and_values_are_checked() -> None:
    class Writer(Bootstrap):
        def init(self, state: SMCState) -> None:
            state["z"] = ember.sample("z_init", dist.Normal(0.0, 1.0))

    smc = SMCFilter(LinearGaussian(), Writer(), num_particles=4, max_plate_nesting=0)
    with pytest.raises(RuntimeError, match="Guide cannot write to SMCState"):
        smc.init()
    assert dict(smc.state) == {} and not smc.state._locked
    state = SMCState(4)
    with pytest.raises(ValueError, match=r"Expected leading dim of size 4 but got shape torch.Size\(\[3\]\)"):
        state["z"] = torch.zeros(3)
    with pytest.raises(TypeError, match="Only Tensors can be stored in an SMCState, but got float"):
        state["z"] = 1.0  # type: ignore[assignment]  # the point of the test


def test_an_impossible_observation_raises_smc_failed_naming_the_site() -> None:
    class Bounded(LinearGaussian):
        def step(self, state: SMCState, y: torch.Tensor) -> None:
            state["z"] = ember.sample("z", dist.Normal(A * state["z"], Q**0.5))
            ember.sample("y", dist.Uniform(state["z"] - 0.01, state["z"] + 0.01), obs=y)

    smc = SMCFilter(Bounded(), Bootstrap(), num_particles=5, max_plate_nesting=0)
    smc.init()
    with ember.validation_enabled(False):
        with pytest.raises(SMCFailed, match="Failed to find feasible hypothesis after site y"):
            smc.step(torch.tensor(50.0))

"""``psis_diagnostic``: equal to pyro-ppl's on the same seed, the tail fit it is built on, the
known tail index of Gaussian proposals, and bad input."""

from __future__ import annotations

import inspect
import math
from typing import Any

import pyro.infer.importance
import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer.importance import psis_diagnostic, vectorized_importance_weights
from ember.ops.stats import fit_generalized_pareto
from tests.parity._backends import EMBER, Backend, run_both

pyro_importance: Any = pyro.infer.importance  # pyro-ppl is not fully annotated
DATA = torch.tensor([0.3, -0.5, 1.2, 0.8])


def _psis(b: Backend) -> Any:
    return psis_diagnostic if b.pyro is ember else pyro_importance.psis_diagnostic


def _normal_pair(b: Backend, guide_scale: float) -> tuple[Any, Any]:
    """A standard normal model and a ``Normal(0, guide_scale)`` guide, whose importance
    weights have the Pareto tail index ``1 - guide_scale ** 2`` when ``guide_scale < 1``."""

    def model() -> None:
        b.pyro.sample("x", b.dist.Normal(0.0, 1.0))

    def guide() -> None:
        b.pyro.sample("x", b.dist.Normal(0.0, guide_scale))

    return model, guide


def _plated_pair(b: Backend) -> tuple[Any, Any]:
    def model(data: torch.Tensor) -> None:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 2.0))
        with b.pyro.plate("N", len(data)):
            b.pyro.sample("obs", b.dist.Normal(loc, 1.0), obs=data)

    def guide(data: torch.Tensor) -> None:
        b.pyro.sample("loc", b.dist.Normal(b.pyro.param("m", torch.tensor(0.2)), 0.3))

    return model, guide


@pytest.mark.parametrize("guide_scale", [0.3, 0.7, 1.5])
@pytest.mark.parametrize(("num_particles", "max_simultaneous"), [(500, None), (600, 200)])
def test_psis_diagnostic_equals_pyro_on_the_same_seed(
    guide_scale: float, num_particles: int, max_simultaneous: int | None
) -> None:
    def program(b: Backend) -> Any:
        model, guide = _normal_pair(b, guide_scale)
        extra = {} if max_simultaneous is None else {"max_simultaneous_particles": max_simultaneous}
        return _psis(b)(model, guide, num_particles=num_particles, **extra)

    ours, theirs = run_both(program, seed=1)
    assert isinstance(ours, float)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)


def test_psis_diagnostic_with_data_and_plates_equals_pyro() -> None:
    def program(b: Backend) -> Any:
        model, guide = _plated_pair(b)
        return _psis(b)(model, guide, DATA, num_particles=400, max_plate_nesting=1)

    ours, theirs = run_both(program, seed=2)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)


def test_psis_diagnostic_fits_the_largest_weights_above_the_cutoff() -> None:
    model, guide = _plated_pair(EMBER)
    torch.manual_seed(5)
    k = psis_diagnostic(model, guide, DATA, num_particles=300, max_plate_nesting=1)
    torch.manual_seed(5)
    log_w, _, _ = vectorized_importance_weights(model, guide, DATA, num_samples=300, max_plate_nesting=1)
    log_w = torch.as_tensor(log_w)
    log_w = (log_w - log_w.max()).sort().values
    tail_size = math.ceil(min(0.2 * 300, 3 * math.sqrt(300)))  # 52 weights above the cut-off
    cutoff = log_w[-tail_size - 1]
    expected, _ = fit_generalized_pareto(log_w[-tail_size:].exp() - cutoff.exp())
    assert k == pytest.approx(expected, rel=1e-12)


def test_psis_diagnostic_recovers_the_tail_index_of_a_narrow_gaussian_guide() -> None:
    # Normal(0, s) proposing for Normal(0, 1): P(w > t) ~ t^(-1 / (1 - s^2)), so k = 1 - s^2.
    # Over 20 seeds with 50,000 particles the estimates' standard deviation is about 0.05.
    narrow = psis_diagnostic(*_normal_pair(EMBER, 0.5), num_particles=50000)
    assert narrow == pytest.approx(0.75, abs=0.2)
    assert psis_diagnostic(*_normal_pair(EMBER, 0.2), num_particles=50000) > 0.96 - 0.2
    # A wider proposal has bounded weights: a negative index.
    assert psis_diagnostic(*_normal_pair(EMBER, 2.0), num_particles=5000) < 0.0


def test_psis_diagnostic_of_the_exact_posterior_warns_and_is_infinite() -> None:
    def program(b: Backend) -> Any:
        model, _ = _normal_pair(b, 1.0)
        with pytest.warns(UserWarning, match="Not enough tail samples to compute PSIS diagnostic"):
            return _psis(b)(model, model, num_particles=100)

    assert run_both(program) == (math.inf, math.inf)


def test_psis_diagnostic_leaves_params_without_gradients_and_draws_one_particle_at_a_time() -> None:
    model, guide = _plated_pair(EMBER)
    # Beyond Pyro (whose torch.cat rejects the scalar weights), batches of one particle work.
    k = psis_diagnostic(model, guide, DATA, num_particles=100, max_simultaneous_particles=1, max_plate_nesting=1)
    assert math.isfinite(k)
    assert ember.param("m").grad is None


def test_signature_matches_pyro() -> None:
    ours = inspect.signature(psis_diagnostic).parameters
    theirs = inspect.signature(pyro_importance.psis_diagnostic).parameters
    assert [(p.name, p.kind) for p in ours.values()] == [(p.name, p.kind) for p in theirs.values()]


def test_indivisible_particle_counts_raise_value_error_like_pyro() -> None:
    def program(b: Backend) -> Any:
        model, guide = _normal_pair(b, 0.5)
        with pytest.raises(ValueError, match="num_particles must be divisible by max_simultaneous_particles."):
            _psis(b)(model, guide, num_particles=100, max_simultaneous_particles=30)
        return True

    assert run_both(program) == (True, True)

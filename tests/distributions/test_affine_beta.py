"""Tests for AffineBeta (affine_beta.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import (
    assert_close,
    assert_fits_cdf,
    assert_log_prob_matches_pyro,
    assert_moments,
    assert_rsample_grads_match_finite_differences,
    assert_shapes_match_pyro,
    numeric_cdf,
    pyro_dist,
)

_C1 = torch.tensor([0.7, 2.0, 5.0])
_C0 = torch.tensor([1.5, 2.0, 0.9])
_LOC = torch.tensor([-1.0, 0.0, 3.0])
_SCALE = torch.tensor([2.0, 0.5, 4.0])


def test_log_prob_and_moments_match_pyro() -> None:
    value = _LOC + _SCALE * torch.rand(5, 3)
    d = dist.AffineBeta(_C1, _C0, _LOC, _SCALE)
    p = pyro_dist.AffineBeta(_C1, _C0, _LOC, _SCALE)
    assert_log_prob_matches_pyro(d, p, value)
    for name in ("mean", "variance", "low", "high", "sample_size", "concentration1", "concentration0"):
        assert_close(getattr(d, name), getattr(p, name))
    assert_shapes_match_pyro(d, p, (2, 3), value)
    assert type(d.expand((2, 3))) is dist.AffineBeta
    assert dist.AffineBeta.infer_shapes(concentration1=(3,), concentration0=(), loc=(2, 1), scale=()) == (
        torch.Size([2, 3]),
        torch.Size([]),
    )


def test_samples_stay_strictly_inside_and_fit_the_density() -> None:
    d = dist.AffineBeta(_C1.double(), _C0.double(), _LOC.double(), _SCALE.double())
    samples = d.rsample((3000,))
    assert bool(((samples > d.low) & (samples < d.high)).all())
    assert bool(d.log_prob(samples).isfinite().all())
    assert_moments(samples, d.mean, d.variance)
    beta = dist.Beta(_C1.double(), _C0.double())
    unit = (samples - d.low) / d.scale
    assert_fits_cdf(unit, numeric_cdf(lambda x: beta.log_prob(x.clamp(1e-12, 1 - 1e-12)), 0.0, 1.0, 200001))


def test_rsample_gradients_match_finite_differences_and_pyro() -> None:
    # The Beta draw is a rejection sampler, so only the affine parameters are smooth in a
    # fixed seed; the concentrations' implicit gradients are compared with Pyro's.
    assert_rsample_grads_match_finite_differences(
        lambda loc, scale: dist.AffineBeta(_C1.double(), _C0.double(), loc, scale), [_LOC, _SCALE]
    )
    grads = []
    for lib in (dist, pyro_dist):
        c1, c0 = _C1.clone().requires_grad_(), _C0.clone().requires_grad_()
        torch.manual_seed(13)
        sample = lib.AffineBeta(c1, c0, _LOC, _SCALE).rsample((3,))
        grads.append(torch.autograd.grad(sample.sum(), (c1, c0)))
    for ours, theirs in zip(*grads):
        assert bool(ours.isfinite().all())
        assert_close(ours, theirs)


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="parameter scale .* of distribution AffineBeta"):
        dist.AffineBeta(_C1, _C0, _LOC, -_SCALE)

"""Tests for SoftLaplace (softlaplace.py)."""

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

_LOC = torch.tensor([-1.0, 0.5])
_SCALE = torch.tensor([0.5, 2.0])


def test_log_prob_cdf_icdf_moments_match_pyro() -> None:
    value = torch.randn(6, 2) * 3
    d, p = dist.SoftLaplace(_LOC, _SCALE), pyro_dist.SoftLaplace(_LOC, _SCALE)
    assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.cdf(value), p.cdf(value))
    u = torch.rand(6, 2)
    assert_close(d.icdf(u), p.icdf(u))
    assert_close(d.variance, p.variance)
    assert_shapes_match_pyro(d, p, (3, 2), value)


def test_cdf_is_the_integral_of_the_density() -> None:
    d = dist.SoftLaplace(_LOC.double(), _SCALE.double())
    values = torch.tensor([[-3.0, -2.0], [0.0, 1.0], [2.0, 6.0]], dtype=torch.float64)
    assert_close(numeric_cdf(d.log_prob, -60.0, 60.0)(values), d.cdf(values), atol=1e-6)


def test_samples_fit_the_cdf_with_the_stated_moments() -> None:
    d = dist.SoftLaplace(_LOC, _SCALE)
    samples = d.rsample((4000,))
    assert_fits_cdf(samples, d.cdf)
    assert_moments(samples, d.mean, d.variance)


def test_rsample_gradients_match_finite_differences() -> None:
    assert_rsample_grads_match_finite_differences(dist.SoftLaplace, [_LOC, _SCALE])


def test_bad_scale_raises() -> None:
    with pytest.raises(ValueError, match="parameter scale .* of distribution SoftLaplace"):
        dist.SoftLaplace(_LOC, torch.tensor([1.0, 0.0]))

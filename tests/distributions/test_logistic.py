"""Tests for Logistic and SkewLogistic (logistic.py)."""

from __future__ import annotations

import math

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
    pyro_dist,
)

_LOC = torch.tensor([-1.0, 0.0, 2.5])
_SCALE = torch.tensor([0.5, 1.0, 3.0])
_ASYMMETRY = torch.tensor([0.3, 1.0, 4.0])


def test_logistic_log_prob_cdf_icdf_match_pyro() -> None:
    value = torch.randn(5, 3) * 4
    d, p = dist.Logistic(_LOC, _SCALE), pyro_dist.Logistic(_LOC, _SCALE)
    assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.cdf(value), p.cdf(value))
    u = torch.rand(5, 3)
    assert_close(d.icdf(u), p.icdf(u))
    assert_close(d.entropy(), p.entropy())
    assert_close(d.variance, p.variance)
    assert_shapes_match_pyro(d, p, (2, 3), value)


def test_skew_logistic_log_prob_cdf_icdf_match_pyro() -> None:
    value = torch.randn(5, 3) * 4
    d = dist.SkewLogistic(_LOC, _SCALE, _ASYMMETRY)
    p = pyro_dist.SkewLogistic(_LOC, _SCALE, _ASYMMETRY)
    assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.cdf(value), p.cdf(value))
    u = torch.rand(5, 3)
    assert_close(d.icdf(u), p.icdf(u), atol=1e-4)
    assert_shapes_match_pyro(d, p, (4, 3), value)


def test_skew_logistic_with_unit_asymmetry_is_logistic() -> None:
    value = torch.randn(7, 3)
    assert_close(dist.SkewLogistic(_LOC, _SCALE).log_prob(value), dist.Logistic(_LOC, _SCALE).log_prob(value))


@pytest.mark.parametrize("name", ["Logistic", "SkewLogistic"])
def test_samples_fit_the_cdf_and_are_seeded_like_pyro(name: str) -> None:
    args = (_LOC, _SCALE) if name == "Logistic" else (_LOC, _SCALE, _ASYMMETRY)
    d = getattr(dist, name)(*args)
    torch.manual_seed(1)
    samples = d.rsample((4000,))
    assert samples.shape == (4000, 3) and bool(d.support.check(samples).all())
    assert_fits_cdf(samples, d.cdf)
    torch.manual_seed(1)
    assert_close(samples, getattr(pyro_dist, name)(*args).rsample((4000,)), atol=1e-4)


def test_logistic_sample_moments() -> None:
    d = dist.Logistic(_LOC, _SCALE)
    assert_moments(d.sample((4000,)), d.mean, d.variance)
    assert_close(d.variance, _SCALE**2 * math.pi**2 / 3)


@pytest.mark.parametrize("name", ["Logistic", "SkewLogistic"])
def test_rsample_gradients_match_finite_differences(name: str) -> None:
    params = [_LOC, _SCALE] if name == "Logistic" else [_LOC, _SCALE, _ASYMMETRY]
    assert_rsample_grads_match_finite_differences(getattr(dist, name), params)


@pytest.mark.parametrize("name", ["Logistic", "SkewLogistic"])
def test_bad_scale_raises_value_error_naming_distribution_argument_and_shape(name: str) -> None:
    with pytest.raises(ValueError, match=rf"parameter scale \(Tensor of shape \(3,\)\) of distribution {name}"):
        getattr(dist, name)(_LOC, -_SCALE)


@pytest.mark.parametrize("name", ["Logistic", "SkewLogistic"])
def test_mismatched_parameter_shapes_raise_naming_distribution_and_shapes(name: str) -> None:
    with pytest.raises(RuntimeError, match=rf"{name}: parameters loc \(3,\), scale \(2,\)"):
        getattr(dist, name)(torch.zeros(3), torch.ones(2))

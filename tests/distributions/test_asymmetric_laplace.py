"""Tests for AsymmetricLaplace and SoftAsymmetricLaplace (asymmetric_laplace.py)."""

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

_LOC = torch.tensor([-1.0, 0.5, 2.0])
_SCALE = torch.tensor([0.5, 1.0, 2.0])
_ASYMMETRY = torch.tensor([0.5, 1.0, 3.0])
_SOFTNESS = torch.tensor([0.2, 1.0, 2.0])


def test_asymmetric_laplace_matches_pyro() -> None:
    value = torch.randn(6, 3) * 3
    d = dist.AsymmetricLaplace(_LOC, _SCALE, _ASYMMETRY)
    p = pyro_dist.AsymmetricLaplace(_LOC, _SCALE, _ASYMMETRY)
    assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert_shapes_match_pyro(d, p, (2, 3), value)


def test_soft_asymmetric_laplace_matches_pyro_including_far_tails() -> None:
    value = torch.cat([torch.randn(6, 3) * 3, torch.tensor([[-30.0, 25.0, 40.0]])])
    args = (_LOC.double(), _SCALE.double(), _ASYMMETRY.double(), _SOFTNESS.double())
    d, p = dist.SoftAsymmetricLaplace(*args), pyro_dist.SoftAsymmetricLaplace(*args)
    assert_log_prob_matches_pyro(d, p, value.double())
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)


def test_soft_asymmetric_laplace_expands_unlike_pyro() -> None:
    # Pyro's expand allocates the wrong class and raises NotImplementedError.
    d = dist.SoftAsymmetricLaplace(_LOC, _SCALE, _ASYMMETRY, _SOFTNESS).expand((2, 3))
    assert type(d) is dist.SoftAsymmetricLaplace and d.batch_shape == (2, 3)
    assert_close(d.softness, _SOFTNESS.expand(2, 3))


def test_soft_asymmetric_laplace_log_prob_stays_finite_where_erfc_underflows() -> None:
    d = dist.SoftAsymmetricLaplace(0.0, 1.0, 1.0, 0.1)
    assert bool(d.log_prob(torch.tensor([-200.0, 200.0])).isfinite().all())


@pytest.mark.parametrize("name", ["AsymmetricLaplace", "SoftAsymmetricLaplace"])
def test_samples_fit_the_density(name: str) -> None:
    args = (_LOC, _SCALE, _ASYMMETRY) + ((_SOFTNESS,) if name.startswith("Soft") else ())
    d = getattr(dist, name)(*[a.double() for a in args])
    torch.manual_seed(2)
    samples = d.rsample((3000,))
    assert_fits_cdf(samples, numeric_cdf(d.log_prob, -80.0, 80.0, points=40001))
    assert_moments(samples, d.mean, d.variance)
    torch.manual_seed(2)
    pyro_samples = getattr(pyro_dist, name)(*[a.double() for a in args]).rsample((3000,))
    assert_close(samples, pyro_samples)


@pytest.mark.parametrize("name", ["AsymmetricLaplace", "SoftAsymmetricLaplace"])
def test_rsample_gradients_match_finite_differences(name: str) -> None:
    params = [_LOC, _SCALE, _ASYMMETRY] + ([_SOFTNESS] if name.startswith("Soft") else [])
    assert_rsample_grads_match_finite_differences(getattr(dist, name), params)


def test_bad_asymmetry_raises() -> None:
    with pytest.raises(ValueError, match="parameter asymmetry .* of distribution AsymmetricLaplace"):
        dist.AsymmetricLaplace(_LOC, _SCALE, -_ASYMMETRY)

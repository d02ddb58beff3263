"""Tests for TruncatedPolyaGamma (polya_gamma.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import in_support, assert_close, assert_fits_cdf, numeric_cdf, pyro_dist


def test_log_prob_matches_pyro_and_integrates_to_about_one() -> None:
    # Pyro builds the series coefficients in float32 whatever the value's dtype: compare there.
    value = torch.rand(20) * 2.4 + 0.05
    d, p = dist.TruncatedPolyaGamma(torch.tensor(0.0)), pyro_dist.TruncatedPolyaGamma(torch.tensor(0.0))
    assert_close(d.log_prob(value), p.log_prob(value))
    prototype = torch.tensor(0.0, dtype=torch.float64)
    d = dist.TruncatedPolyaGamma(prototype)
    grid = torch.linspace(1e-3, 2.5, 5001, dtype=torch.float64)
    mass = float(torch.trapezoid(d.log_prob(grid).exp(), grid))
    assert abs(mass - 1.0) < 1e-3  # PG(1, 0) has almost no mass beyond 2.5


def test_samples_are_seeded_like_pyro_and_fit_the_density() -> None:
    prototype = torch.tensor(0.0, dtype=torch.float64)
    d = dist.TruncatedPolyaGamma(prototype).expand((2,))
    torch.manual_seed(10)
    samples = d.sample((3000,))
    torch.manual_seed(10)
    assert_close(samples, pyro_dist.TruncatedPolyaGamma(prototype).expand((2,)).sample((3000,)))
    assert samples.shape == (2, 3000) and in_support(d, samples)
    flat = samples.reshape(-1, 1)
    # The sampler truncates the series after 8 terms: its mean is 0.2489 instead of 0.25.
    assert abs(float(flat.mean()) - 0.25) < 0.01
    assert_fits_cdf(flat, numeric_cdf(lambda x: d.log_prob(x.clamp(min=1e-4))[..., :1], 0.0, 2.5, 20001))


def test_values_outside_the_truncation_raise() -> None:
    with pytest.raises(ValueError, match="support"):
        dist.TruncatedPolyaGamma(torch.tensor(0.0)).log_prob(torch.tensor(3.0))

"""Tests for Stable and StableWithLogProb (stable.py, stable_log_prob.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import (
    assert_close,
    assert_rsample_grads_match_finite_differences,
    assert_shapes_match_pyro,
    pyro_dist,
    pyro_stable_integrator,
)

# Every regime of the density: small alpha, the interpolated band around 1, Cauchy, normal.
_ALPHA = torch.tensor([0.5, 0.97, 1.0, 1.03, 1.3, 1.8, 2.0], dtype=torch.float64)
_BETA = torch.tensor([0.3, -0.5, 0.9, 0.0, -1.0, 0.2, 0.0], dtype=torch.float64)


@pytest.fixture
def pyro_stable(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = importlib.import_module("pyro.distributions.stable_log_prob")
    monkeypatch.setattr(module, "integrate", pyro_stable_integrator())
    return pyro_dist.Stable


def test_log_prob_matches_pyro_in_every_regime(pyro_stable: Any) -> None:
    values = torch.cat([torch.randn(3, 7, dtype=torch.float64) * 3, torch.full((1, 7), 0.2)])
    for dtype in (torch.float64, torch.float32):
        args = (_ALPHA.to(dtype), _BETA.to(dtype), torch.tensor(1.5, dtype=dtype), 0.2)
        d, p = dist.Stable(*args), pyro_stable(*args)
        assert_close(d.log_prob(values.to(dtype)), p.log_prob(values.to(dtype)))
    assert_shapes_match_pyro(d, p, (2, 7), values.float())


def test_log_prob_is_normal_at_two_and_a_normalized_density() -> None:
    d = dist.Stable(torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    values = torch.linspace(-4, 4, 9, dtype=torch.float64)
    assert_close(d.log_prob(values), dist.Normal(0.0, math.sqrt(2.0)).log_prob(values).double(), atol=5e-4)
    alpha = torch.tensor([1.5, 1.2], dtype=torch.float64)
    skewed = dist.Stable(alpha, torch.tensor([0.5, -0.3], dtype=torch.float64))
    grid = torch.linspace(-30, 30, 3001, dtype=torch.float64).unsqueeze(-1)
    mass = skewed.log_prob(grid).exp().sum(0) * (grid[1, 0] - grid[0, 0])
    # Beyond +-30 the two tails hold about 2 C x^-alpha, C = Gamma(alpha) sin(pi alpha/2) / pi.
    tails = 2 * torch.lgamma(alpha).exp() * torch.sin(math.pi * alpha / 2) / math.pi * 30**-alpha
    assert bool(((mass + tails - 1).abs() < 2e-3).all()), mass + tails


def test_s_coordinates_shift_the_location_by_the_skew_term() -> None:
    alpha, beta = torch.tensor(1.5, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)
    shift = beta * math.tan(math.pi / 2 * 1.5)
    s = dist.Stable(alpha, beta, coords="S")
    s0 = dist.Stable(alpha, beta, loc=shift)  # the same law in S0 coordinates
    values = torch.linspace(-3, 3, 7, dtype=torch.float64)
    assert_close(s.log_prob(values), s0.log_prob(values))


def test_rsample_is_seeded_like_pyro_and_fits_the_density() -> None:
    alpha = torch.tensor([0.7, 1.0, 1.5, 1.9], dtype=torch.float64)
    beta = torch.tensor([0.5, 0.0, -0.4, 0.8], dtype=torch.float64)
    for coords in ("S0", "S"):
        torch.manual_seed(9)
        ours = dist.Stable(alpha, beta, 2.0, 1.0, coords=coords).rsample((5,))
        torch.manual_seed(9)
        assert_close(ours, pyro_dist.Stable(alpha, beta, 2.0, 1.0, coords=coords).rsample((5,)))
    d = dist.Stable(alpha[2:], beta[2:])
    n = 3000
    samples = d.rsample((n,))
    # Chi-square over unit bins on [-10, 10] plus one bin for both tails; the bin masses
    # come from integrating the density (trapezoid, 100 points per bin).
    edges = torch.arange(-10.0, 10.5, 1.0, dtype=torch.float64)
    grid = torch.linspace(-10, 10, 2001, dtype=torch.float64).unsqueeze(-1)
    density = d.log_prob(grid).exp()
    pieces = (density[1:] + density[:-1]) / 2 * 0.01
    masses = pieces.reshape(20, 100, 2).sum(1)
    masses = torch.cat([masses, (1 - masses.sum(0, keepdim=True)).clamp(min=1e-12)])
    index = torch.bucketize(samples, edges) - 1
    index = torch.where((samples < -10) | (samples >= 10), 20, index)
    counts = torch.stack([(index == k).sum(0) for k in range(21)]).double()
    expected = masses * n
    statistic = ((counts - expected) ** 2 / expected).sum()
    df = 2 * 20
    assert float(statistic) < df + 5 * math.sqrt(2 * df), float(statistic)


def test_rsample_gradients_match_finite_differences_also_near_stability_one() -> None:
    def make(alpha: torch.Tensor, beta: torch.Tensor, scale: torch.Tensor, loc: torch.Tensor) -> dist.Stable:
        return dist.Stable(alpha, beta, scale, loc)

    params = [torch.tensor([0.8, 0.995, 1.6]), torch.tensor([0.3, -0.2, 0.5]), torch.tensor([1.0, 2.0, 0.5]), torch.zeros(3)]
    assert_rsample_grads_match_finite_differences(make, params, sample_shape=(2,))


def test_moments_follow_the_stability() -> None:
    d = dist.Stable(torch.tensor([0.9, 1.5, 2.0]), torch.tensor([0.5, 0.5, 0.0]), 2.0, 1.0)
    assert bool(d.mean[0].isnan()) and math.isinf(float(d.variance[1]))
    assert_close(d.mean[1:], torch.tensor([1.0 - 2.0 * 0.5 * math.tan(math.pi * 0.75), 1.0]))
    assert_close(d.variance[2], torch.tensor(8.0))


def test_stable_with_log_prob_is_a_stable_with_the_same_density() -> None:
    d = dist.StableWithLogProb(torch.tensor(1.5), torch.tensor(0.2))
    assert isinstance(d, dist.Stable) and type(d.expand((2,))) is dist.StableWithLogProb
    value = torch.tensor([0.3, -1.0])
    assert_close(d.log_prob(value), dist.Stable(torch.tensor(1.5), torch.tensor(0.2)).log_prob(value))


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="parameter stability .* of distribution Stable"):
        dist.Stable(torch.tensor(2.5), torch.tensor(0.0))
    with pytest.raises(ValueError, match="parameter skew "):
        dist.Stable(torch.tensor(1.5), torch.tensor(1.5))
    with pytest.raises(ValueError, match="unknown coords 'Z'"):
        dist.Stable(torch.tensor(1.5), torch.tensor(0.0), coords="Z")

"""Tests for SineSkewed (sine_skewed.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def test_log_prob_matches_pyro_on_von_mises_and_bivariate_bases() -> None:
    loc, conc = torch.randn(3, 1), torch.rand(3, 1) + 0.5
    skew = torch.rand(3, 1) - 0.5
    value = torch.rand(4, 3, 1) * 6 - 3
    ours = dist.SineSkewed(dist.VonMises(loc, conc).to_event(1), skew).log_prob(value)
    theirs = pyro_dist.SineSkewed(pyro_dist.VonMises(loc, conc).to_event(1), skew).log_prob(value)
    assert torch.allclose(ours, theirs, atol=1e-5)
    base = dist.SineBivariateVonMises(0.3, -0.2, 2.0, 3.0, correlation=0.5)
    pyro_base = pyro_dist.SineBivariateVonMises(0.3, -0.2, 2.0, 3.0, correlation=0.5)
    skew2 = torch.tensor([0.3, -0.4])
    value2 = torch.rand(5, 2) * 6 - 3
    assert torch.allclose(
        dist.SineSkewed(base, skew2).log_prob(value2), pyro_dist.SineSkewed(pyro_base, skew2).log_prob(value2), atol=1e-5
    )


def test_skewed_density_stays_normalized_and_samples_match_it() -> None:
    base = dist.VonMises(torch.tensor([0.5], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64)).to_event(1)
    d = dist.SineSkewed(base, torch.tensor([0.7], dtype=torch.float64))
    angle = torch.linspace(-math.pi, math.pi, 20001, dtype=torch.float64)
    density = d.log_prob(angle.unsqueeze(-1)).exp()
    assert abs(float(torch.trapezoid(density, angle)) - 1) < 1e-6
    expected_sin = float(torch.trapezoid(density * angle.sin(), angle))
    x = d.sample((20000,))
    assert x.shape == (20000, 1)
    assert abs(float(x.sin().mean()) - expected_sin) < 5 * float(x.sin().std()) / math.sqrt(20000)


def test_expand_broadcasts_base_and_skewness() -> None:
    base = dist.VonMises(torch.zeros(1), torch.ones(1)).to_event(1)
    d = dist.SineSkewed(base, torch.tensor([[0.2], [-0.2]]))
    assert (d.batch_shape, d.event_shape) == ((2,), (1,))
    e = d.expand((3, 2))
    assert e.sample((4,)).shape == (4, 3, 2, 1)
    v = torch.tensor([0.3])
    assert torch.allclose(e.log_prob(v), d.log_prob(v).expand(3, 2))


def test_bad_skewness() -> None:
    base = dist.VonMises(torch.zeros(2), torch.ones(2)).to_event(1)
    with pytest.raises(ValueError, match=r"skewness.*\(3,\)"):
        dist.SineSkewed(base, torch.zeros(3))
    with pytest.warns(UserWarning, match="shouldn't exceed one"):
        dist.SineSkewed(base, torch.tensor([0.8, 0.8]), validate_args=False)

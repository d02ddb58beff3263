"""Tests for SineBivariateVonMises (sine_bivariate_von_mises.py)."""

from __future__ import annotations

import importlib
import math
import warnings
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def _grid_moments(d: dist.SineBivariateVonMises, points: int = 400) -> tuple[float, torch.Tensor, torch.Tensor]:
    g = torch.linspace(-math.pi, math.pi, points + 1, dtype=torch.float64)[:-1]
    phi, psi = torch.meshgrid(g, g, indexing="ij")
    w = d.log_prob(torch.stack([phi, psi], -1)).exp() * (2 * math.pi / points) ** 2
    features = torch.stack([phi.cos(), psi.cos(), phi.sin() * psi.sin()])
    return float(w.sum()), (w * features).sum((-1, -2)), features


def test_log_prob_matches_pyro_with_either_correlation() -> None:
    phi, psi, k1, k2 = torch.randn(4), torch.randn(4), torch.rand(4) * 5 + 0.5, torch.rand(4) * 5 + 0.5
    value = torch.rand(3, 4, 2) * 6 - 3
    rho = torch.randn(4)
    ours = dist.SineBivariateVonMises(phi, psi, k1, k2, correlation=rho).log_prob(value)
    theirs = pyro_dist.SineBivariateVonMises(phi, psi, k1, k2, correlation=rho).log_prob(value)
    assert torch.allclose(ours, theirs, atol=1e-5)
    w = rho.tanh()
    ours = dist.SineBivariateVonMises(phi, psi, k1, k2, weighted_correlation=w).log_prob(value)
    theirs = pyro_dist.SineBivariateVonMises(phi, psi, k1, k2, weighted_correlation=w).log_prob(value)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_density_integrates_to_one() -> None:
    d = dist.SineBivariateVonMises(
        torch.tensor(0.3, dtype=torch.float64), torch.tensor(-1.0, dtype=torch.float64),
        torch.tensor(5.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64),
        correlation=torch.tensor(1.5, dtype=torch.float64),
    )
    total, _, _ = _grid_moments(d)
    assert abs(total - 1.0) < 1e-6


@pytest.mark.parametrize(
    "k1, k2, rho", [(10.0, 8.0, 4.5), (1.0, 1.0, 3.0), (2.0, 30.0, -5.0)], ids=["unimodal", "bimodal", "skewed"]
)
def test_sample_moments_match_the_density(k1: float, k2: float, rho: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the bimodal case warns
        d = dist.SineBivariateVonMises(
            torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64),
            torch.tensor(k1, dtype=torch.float64), torch.tensor(k2, dtype=torch.float64),
            correlation=torch.tensor(rho, dtype=torch.float64),
        )
    _, expected, _ = _grid_moments(d)
    x = d.sample((10000,))
    features = torch.stack([x[:, 0].cos(), x[:, 1].cos(), x[:, 0].sin() * x[:, 1].sin()])
    std_error = features.std(-1) / math.sqrt(10000)
    assert ((features.mean(-1) - expected).abs() < 5 * std_error + 1e-3).all()


def test_samples_shapes_and_locations() -> None:
    d = dist.SineBivariateVonMises(torch.tensor([0.0, 2.0]), torch.tensor([1.0, -2.0]), 20.0, 20.0, correlation=0.0)
    x = d.sample((3000, 2))
    assert x.shape == (3000, 2, 2, 2)
    assert ((x >= -math.pi) & (x < math.pi)).all()
    circular_mean = torch.atan2(x.sin().mean((0, 1)), x.cos().mean((0, 1)))
    assert torch.allclose(circular_mean, d.mean, atol=0.05)


def test_expand_and_infer_shapes() -> None:
    d = dist.SineBivariateVonMises(0.0, 0.0, 1.0, 2.0, correlation=torch.tensor([0.5, 0.1]))
    e = d.expand((3, 2))
    v = torch.zeros(2)
    assert (e.batch_shape, e.event_shape) == ((3, 2), (2,))
    assert torch.allclose(e.log_prob(v), d.log_prob(v).expand(3, 2))
    assert dist.SineBivariateVonMises.infer_shapes(phi_loc=(3, 1), psi_loc=(2,)) == ((3, 2), (2,))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        dist.SineBivariateVonMises(0.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="10,000"):
        dist.SineBivariateVonMises(0.0, 0.0, 20000.0, 1.0, correlation=0.0)
    with pytest.warns(UserWarning, match="bimodal"):
        dist.SineBivariateVonMises(0.0, 0.0, 1.0, 1.0, correlation=2.0, validate_args=True)

"""Tests for ProjectedNormal (projected_normal.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions import constraints

pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize("size", [2, 3, 4])
def test_log_prob_matches_pyro(size: int) -> None:
    concentration = torch.randn(6, size) * 2
    value = torch.nn.functional.normalize(torch.randn(3, 6, size), dim=-1)
    ours = dist.ProjectedNormal(concentration).log_prob(value)
    theirs = pyro_dist.ProjectedNormal(concentration).log_prob(value)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_circle_density_integrates_to_one() -> None:
    angle = torch.linspace(-math.pi, math.pi, 20001, dtype=torch.float64)
    value = torch.stack([angle.cos(), angle.sin()], -1)
    d = dist.ProjectedNormal(torch.tensor([1.5, -0.5], dtype=torch.float64))
    assert abs(float(torch.trapezoid(d.log_prob(value).exp(), angle)) - 1.0) < 1e-6


def test_five_dimensional_density_integrates_to_one() -> None:
    # Pyro stops at dim 4; the ray integral holds for any dim. Integrate over S^4 (area
    # 8 pi^2 / 3) by Monte Carlo over uniform directions.
    torch.manual_seed(0)
    concentration = torch.tensor([1.0, 0.5, 0.0, -0.3, 0.2], dtype=torch.float64)
    uniform = torch.nn.functional.normalize(torch.randn(200000, 5, dtype=torch.float64), dim=-1)
    density = dist.ProjectedNormal(concentration).log_prob(uniform).exp()
    area = 8 * math.pi**2 / 3
    estimate = float(density.mean()) * area
    error = float(density.std()) * area / math.sqrt(len(density))
    assert abs(estimate - 1.0) < 4 * error


def test_samples_lie_on_the_sphere_and_mean_points_along_concentration() -> None:
    d = dist.ProjectedNormal(torch.tensor([0.0, 3.0, 4.0]))
    x = d.rsample((2000,))
    assert constraints.sphere.check(x).all()
    assert torch.allclose(d.mean, torch.tensor([0.0, 0.6, 0.8]))
    assert torch.allclose(torch.nn.functional.normalize(x.mean(0), dim=0), d.mean, atol=0.02)


def test_rsample_gradient_matches_finite_differences() -> None:
    c = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def objective(value: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)
        return dist.ProjectedNormal(value).rsample((20,))[..., 0].sum()

    (grad,) = torch.autograd.grad(objective(c), [c])
    eps = 1e-6
    for i in range(3):
        shift = torch.zeros(3, dtype=torch.float64)
        shift[i] = eps
        numeric = (objective(c + shift) - objective(c - shift)) / (2 * eps)
        assert torch.allclose(grad[i], numeric, rtol=1e-5, atol=1e-8)


def test_expand_and_infer_shapes() -> None:
    d = dist.ProjectedNormal(torch.randn(1, 3))
    e = d.expand((4, 2))
    assert (e.batch_shape, e.event_shape) == ((4, 2), (3,))
    assert e.rsample((5,)).shape == (5, 4, 2, 3)
    assert dist.ProjectedNormal.infer_shapes(concentration=(4, 3)) == ((4,), (3,))


def test_wrong_event_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="event shape"):
        dist.ProjectedNormal(torch.zeros(3)).log_prob(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="ProjectedNormal"):
        dist.ProjectedNormal(torch.tensor(1.0))

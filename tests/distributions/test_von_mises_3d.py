"""Tests for VonMises3D (von_mises_3d.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def _unit(shape: tuple[int, ...]) -> torch.Tensor:
    x = torch.randn(shape + (3,))
    return torch.nn.functional.normalize(x, dim=-1)


def test_log_prob_matches_pyro() -> None:
    concentration = torch.randn(4, 3) * 3
    value = _unit((5, 4))
    ours = dist.VonMises3D(concentration).log_prob(value)
    assert torch.allclose(ours, pyro_dist.VonMises3D(concentration).log_prob(value), atol=1e-5)


def test_density_integrates_to_one_over_the_sphere() -> None:
    # Integrate in spherical coordinates around the mean direction (the z axis).
    theta = torch.linspace(0, math.pi, 4001, dtype=torch.float64)
    value = torch.stack([theta.sin(), torch.zeros_like(theta), theta.cos()], -1)
    d = dist.VonMises3D(torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64))
    integrand = d.log_prob(value).exp() * theta.sin() * 2 * math.pi
    assert abs(float(torch.trapezoid(integrand, theta)) - 1.0) < 1e-4


def test_expand_and_shapes() -> None:
    d = dist.VonMises3D(torch.randn(3))
    e = d.expand((2, 4))
    assert (e.batch_shape, e.event_shape) == ((2, 4), (3,))
    value = _unit(())
    assert torch.allclose(e.log_prob(value), d.log_prob(value).expand(2, 4))


def test_bad_concentration_shape_names_the_shape() -> None:
    with pytest.raises(ValueError, match=r"rightmost dim 3.*\[4, 2\]"):
        dist.VonMises3D(torch.zeros(4, 2))


def test_unnormalized_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="not normalized"):
        dist.VonMises3D(torch.ones(3)).log_prob(torch.ones(3))

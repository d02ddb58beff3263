"""Tests for AVFMultivariateNormal (avf_mvn.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def test_samples_and_gradients_match_pyro_on_the_same_seed() -> None:
    loc = torch.randn(3, dtype=torch.float64, requires_grad=True)
    scale_tril = torch.tensor(
        [[1.0, 0.0, 0.0], [0.3, 0.9, 0.0], [-0.2, 0.1, 1.2]], dtype=torch.float64, requires_grad=True
    )
    control_var = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    results = []
    for cls in (dist.AVFMultivariateNormal, pyro_dist.AVFMultivariateNormal):
        torch.manual_seed(11)
        x = cls(loc, scale_tril, control_var).rsample((6,))
        results.append((x, *torch.autograd.grad(x.pow(3).sum(), [loc, scale_tril, control_var])))
    for ours, theirs in zip(*results):
        assert torch.allclose(ours, theirs, atol=1e-8)


def test_scale_gradient_is_unbiased_for_any_control_variate() -> None:
    torch.manual_seed(0)
    loc = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    scale_tril = torch.tensor([[1.0, 0.0], [0.5, 0.7]], dtype=torch.float64, requires_grad=True)
    control_var = torch.randn(2, 1, 2, dtype=torch.float64)
    x = dist.AVFMultivariateNormal(loc, scale_tril, control_var).rsample((40000,))
    (grad,) = torch.autograd.grad(x.square().sum(-1).mean(), [scale_tril])
    assert torch.allclose(grad, 2 * torch.tril(scale_tril.detach()), atol=0.05)


def test_control_var_shape_is_checked() -> None:
    with pytest.raises(ValueError, match=r"2 x L x D.*\(2, 1, 2\)"):
        dist.AVFMultivariateNormal(torch.zeros(3), torch.eye(3), torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match="loc must be 1-dimensional"):
        dist.AVFMultivariateNormal(torch.zeros(1, 3), torch.eye(3), torch.zeros(2, 1, 3))

"""Tests for OMTMultivariateNormal (omt_mvn.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


def _params() -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.randn(3, 3, dtype=torch.float64)
    loc = torch.randn(3, dtype=torch.float64).requires_grad_()
    scale_tril = torch.linalg.cholesky(a @ a.T + torch.eye(3, dtype=torch.float64)).requires_grad_()
    return loc, scale_tril


def test_samples_and_gradients_match_pyro_on_the_same_seed() -> None:
    loc, scale_tril = _params()
    results = []
    for cls in (dist.OMTMultivariateNormal, pyro_dist.OMTMultivariateNormal):
        torch.manual_seed(7)
        x = cls(loc, scale_tril).rsample((5,))
        results.append((x, *torch.autograd.grad(x.pow(3).sum(), [loc, scale_tril])))
    for ours, theirs in zip(*results):
        # Pyro jitters the precision's eigendecomposition by 1e-8, hence the tolerance.
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-8)


def test_log_prob_is_the_multivariate_normal_density() -> None:
    loc, scale_tril = _params()
    value = torch.randn(4, 3, dtype=torch.float64)
    expected = dist.MultivariateNormal(loc, scale_tril=scale_tril).log_prob(value)
    assert torch.allclose(dist.OMTMultivariateNormal(loc, scale_tril).log_prob(value), expected)


def test_scale_gradient_is_unbiased() -> None:
    # d/dL E|x|^2 = d/dL (|loc|^2 + tr(L L^T)) = 2 L.
    torch.manual_seed(0)
    loc = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    scale_tril = torch.tensor([[1.0, 0.0], [0.5, 0.7]], dtype=torch.float64, requires_grad=True)
    x = dist.OMTMultivariateNormal(loc, scale_tril).rsample((40000,))
    (grad,) = torch.autograd.grad(x.square().sum(-1).mean(), [scale_tril])
    assert torch.allclose(grad, 2 * torch.tril(scale_tril.detach()), atol=0.05)


def test_batched_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="loc must be 1-dimensional"):
        dist.OMTMultivariateNormal(torch.zeros(2, 3), torch.eye(3))
    with pytest.raises(ValueError, match="scale_tril must be 2-dimensional"):
        dist.OMTMultivariateNormal(torch.zeros(3), torch.eye(3).expand(2, 3, 3))

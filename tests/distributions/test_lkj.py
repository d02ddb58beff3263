"""Tests for LKJ and LKJCorrCholesky (lkj.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions import constraints

pyro_dist: Any = importlib.import_module("pyro.distributions")


def test_lkj_log_prob_matches_pyro() -> None:
    concentration = torch.tensor([0.5, 1.0, 3.0])
    value = pyro_dist.LKJ(4, concentration).sample((5,))
    ours = dist.LKJ(4, concentration).log_prob(value)
    assert ours.shape == (5, 3)
    assert torch.allclose(ours, pyro_dist.LKJ(4, concentration).log_prob(value), atol=1e-5)


def test_lkj_density_is_proportional_to_det_power() -> None:
    # Two 2x2 correlation matrices: log p differs by (eta - 1) log(det ratio).
    eta = torch.tensor(3.0)
    a, b = torch.tensor([[1.0, 0.3], [0.3, 1.0]]), torch.tensor([[1.0, -0.7], [-0.7, 1.0]])
    d = dist.LKJ(2, eta)
    expected = (eta - 1) * (torch.det(a).log() - torch.det(b).log())
    assert torch.allclose(d.log_prob(a) - d.log_prob(b), expected, atol=1e-5)


def test_lkj_normalizes_in_two_dimensions() -> None:
    # A 2x2 correlation matrix is one number r in (-1, 1); integrate the density over it.
    r = torch.linspace(-0.9999, 0.9999, 20001, dtype=torch.float64)
    matrices = torch.stack([torch.ones_like(r), r, r, torch.ones_like(r)], -1).reshape(-1, 2, 2)
    density = dist.LKJ(2, torch.tensor(2.5, dtype=torch.float64)).log_prob(matrices).exp()
    assert abs(float(torch.trapezoid(density, r)) - 1.0) < 1e-3


def test_lkj_samples_are_correlation_matrices_with_identity_mean() -> None:
    d = dist.LKJ(3, torch.tensor(2.0))
    x = d.sample((2000,))
    assert constraints.corr_matrix.check(x).all()
    assert torch.allclose(x.mean(0), torch.eye(3), atol=0.05)
    assert torch.equal(d.mean, torch.eye(3))


def test_lkj_expand_keeps_density() -> None:
    d = dist.LKJ(3, torch.tensor([1.0, 2.0]))
    e = d.expand((4, 2))
    x = d.sample()
    assert e.batch_shape == (4, 2) and e.event_shape == (3, 3)
    assert torch.allclose(e.log_prob(x), d.log_prob(x).expand(4, 2))


def test_lkj_corr_cholesky_warns_and_matches_lkj_cholesky() -> None:
    with pytest.warns(FutureWarning, match="LKJCorrCholesky"):
        d = dist.LKJCorrCholesky(3, torch.tensor(1.5))
    value = dist.LKJCholesky(3, 1.5).sample((4,))
    assert isinstance(d, dist.LKJCholesky)
    assert torch.allclose(d.log_prob(value), dist.LKJCholesky(3, 1.5).log_prob(value))
    with pytest.warns(FutureWarning):
        theirs = pyro_dist.LKJCorrCholesky(3, torch.tensor(1.5))
    assert torch.allclose(d.log_prob(value), theirs.log_prob(value), atol=1e-5)


def test_corr_cholesky_constraint_is_the_corr_cholesky_alias() -> None:
    assert constraints.corr_cholesky_constraint is constraints.corr_cholesky
    assert "corr_cholesky_constraint" in constraints.__all__


def test_lkj_rejects_non_positive_concentration() -> None:
    with pytest.raises(ValueError, match="concentration"):
        dist.LKJ(3, torch.tensor(-1.0), validate_args=True)

"""Tests for NanMaskedNormal and NanMaskedMultivariateNormal (nanmasked.py)."""

from __future__ import annotations

import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, assert_log_prob_matches_pyro, pyro_dist

_NAN = float("nan")


def test_normal_masks_missing_values_like_pyro_with_finite_gradients() -> None:
    loc = torch.randn(3, requires_grad=True)
    scale = torch.ones(3)
    value = torch.tensor([[0.5, _NAN, 1.0], [float("inf"), 0.0, _NAN]])
    d, p = dist.NanMaskedNormal(loc, scale), pyro_dist.NanMaskedNormal(loc, scale)
    assert_log_prob_matches_pyro(d, p, value)
    result = d.log_prob(value)
    assert float(result[0, 1].detach()) == 0.0
    torch.autograd.backward(result.sum())
    assert loc.grad is not None and bool(loc.grad.isfinite().all())
    complete = torch.randn(2, 3)
    assert_close(d.log_prob(complete), dist.Normal(loc, scale).log_prob(complete))


def test_multivariate_normal_scores_the_marginal_of_observed_coordinates() -> None:
    a = torch.randn(3, 3)
    cov = a @ a.T + torch.eye(3)
    loc = torch.randn(3)
    value = torch.randn(6, 3)
    value[0, 0] = _NAN
    value[1, 1] = _NAN
    value[2] = _NAN
    value[3, 0] = _NAN
    value[4, 1:] = _NAN
    d = dist.NanMaskedMultivariateNormal(loc, cov)
    assert_log_prob_matches_pyro(d, pyro_dist.NanMaskedMultivariateNormal(loc, cov), value)
    result = d.log_prob(value)
    keep = torch.tensor([False, True, True])
    marginal = dist.MultivariateNormal(loc[keep], cov[keep][:, keep])
    assert_close(result[0], marginal.log_prob(value[0, keep]))
    assert float(result[2]) == 0.0
    assert_close(result[4], dist.Normal(loc[0], cov[0, 0].sqrt()).log_prob(value[4, 0]))

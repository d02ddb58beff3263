"""Tests for GroupedNormalNormal (grouped_normal_normal.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from tests.distributions._zoo import assert_close, pyro_dist

_LOC = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
_SCALE = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
_OBS = torch.tensor([0.3, 0.8, 1.0, 0.4, 0.6, 1.5], dtype=torch.float64)
_GROUPS = torch.tensor([0, 1, 1, 2, 2, 2])


def _brute_force(value: torch.Tensor) -> torch.Tensor:
    # The observations are jointly normal: mean prior_loc[g], covariance diag(obs^2) + Z S Z^T.
    one_hot = torch.nn.functional.one_hot(_GROUPS, 3).double()
    cov = torch.diag(_OBS**2) + one_hot @ torch.diag(_SCALE**2) @ one_hot.T
    result: torch.Tensor = dist.MultivariateNormal(_LOC[_GROUPS], cov).log_prob(value)
    return result


def test_log_prob_matches_pyro_and_the_joint_normal() -> None:
    d = dist.GroupedNormalNormal(_LOC, _SCALE, _OBS, _GROUPS)
    p = pyro_dist.GroupedNormalNormal(_LOC, _SCALE, _OBS, _GROUPS)
    value = torch.randn(6, dtype=torch.float64)
    assert_close(d.log_prob(value), p.log_prob(value))
    assert_close(d.log_prob(value), _brute_force(value))
    posterior, pyro_posterior = d.get_posterior(value), p.get_posterior(value)
    assert_close(posterior.loc, pyro_posterior.loc)
    assert_close(posterior.scale, pyro_posterior.scale)
    scalar = dist.GroupedNormalNormal(_LOC, _SCALE, torch.tensor(0.7, dtype=torch.float64), _GROUPS)
    pyro_scalar = pyro_dist.GroupedNormalNormal(_LOC, _SCALE, torch.tensor(0.7, dtype=torch.float64), _GROUPS)
    assert_close(scalar.log_prob(value), pyro_scalar.log_prob(value))


def test_bad_input_raises_naming_shapes() -> None:
    with pytest.raises(ValueError, match=r"group_idx must be a 1-dimensional tensor of indices, got shape \(2, 3\)"):
        dist.GroupedNormalNormal(_LOC, _SCALE, _OBS, _GROUPS.reshape(2, 3))
    with pytest.raises(ValueError, match=r"inclusive range \[0, prior_loc.size\(0\) - 1\] = \[0, 2\]"):
        dist.GroupedNormalNormal(_LOC, _SCALE, _OBS, _GROUPS + 1)
    with pytest.raises(ValueError, match=r"prior_loc and prior_scale must be broadcastable"):
        dist.GroupedNormalNormal(_LOC.expand(2, 3), _SCALE, _OBS, _GROUPS)
    d = dist.GroupedNormalNormal(_LOC, _SCALE, _OBS, _GROUPS)
    with pytest.raises(ValueError, match=r"same shape as group_idx: got \(5,\) vs \(6,\)"):
        d.log_prob(torch.zeros(5, dtype=torch.float64))
    with pytest.raises(NotImplementedError):
        d.sample()
    with pytest.raises(NotImplementedError):
        d.expand((2,))

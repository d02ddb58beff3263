"""Tests for the KL divergences ember.distributions registers with torch."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")

_P_LOC = torch.tensor([0.0, 1.0, 2.0])


def _pair(module: Any, p_mask: Any, q_mask: Any) -> tuple[Any, Any]:
    p = module.Normal(_P_LOC, 1.0).mask(p_mask)
    q = module.Normal(torch.zeros(3), 2.0).mask(q_mask)
    return p, q


_MASK_A = torch.tensor([True, False, True])
_MASK_B = torch.tensor([True, True, False])


@pytest.mark.parametrize(
    ("p_mask", "q_mask"),
    [(True, True), (_MASK_A, True), (True, _MASK_A), (_MASK_A, _MASK_A), (_MASK_A, _MASK_B)],
)
def test_masked_kl_matches_pyro(p_mask: Any, q_mask: Any) -> None:
    ours = dist.kl_divergence(*_pair(dist, p_mask, q_mask))
    theirs = torch.distributions.kl_divergence(*_pair(pyro_dist, p_mask, q_mask))
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(("p_mask", "q_mask"), [(False, True), (True, False), (False, _MASK_A)])
def test_masked_kl_with_false_mask_is_a_zero_tensor(p_mask: Any, q_mask: Any) -> None:
    ours = dist.kl_divergence(*_pair(dist, p_mask, q_mask))
    assert torch.equal(ours, torch.zeros(3))
    # Pyro returns the float 0.0 here.
    assert torch.distributions.kl_divergence(*_pair(pyro_dist, p_mask, q_mask)) == 0.0


def test_masked_kl_zeroes_masked_entries() -> None:
    p, q = _pair(dist, _MASK_A, _MASK_B)
    kl = dist.kl_divergence(p, q)
    base = dist.kl_divergence(dist.Normal(_P_LOC, 1.0), dist.Normal(torch.zeros(3), 2.0))
    assert torch.equal(kl, torch.stack([base[0], torch.tensor(0.0), torch.tensor(0.0)]))


@pytest.mark.parametrize("ndims", [1, 2])
def test_independent_kl_matches_pyro(ndims: int) -> None:
    p_loc, q_loc = torch.randn(2, 3), torch.randn(2, 3)
    ours = dist.kl_divergence(
        dist.Normal(p_loc, 1.0).to_event(ndims), dist.Normal(q_loc, 2.0).to_event(ndims)
    )
    theirs = torch.distributions.kl_divergence(
        pyro_dist.Normal(p_loc, 1.0).to_event(ndims), pyro_dist.Normal(q_loc, 2.0).to_event(ndims)
    )
    torch.testing.assert_close(ours, theirs)
    base = dist.kl_divergence(dist.Normal(p_loc, 1.0), dist.Normal(q_loc, 2.0))
    torch.testing.assert_close(ours, base.sum() if ndims == 2 else base.sum(-1))


def _mvn(module: Any, loc: torch.Tensor) -> Any:
    scale_tril = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.1, -0.2, 1.5]])
    return module.MultivariateNormal(loc, scale_tril=scale_tril)


def test_independent_kl_with_different_event_dims_matches_pyro() -> None:
    p_loc, q_loc = torch.randn(2, 3), torch.randn(2, 3)
    ours = dist.kl_divergence(
        dist.Normal(p_loc, 0.5).to_event(2), _mvn(dist, q_loc).to_event(1)
    )
    theirs = torch.distributions.kl_divergence(
        pyro_dist.Normal(p_loc, 0.5).to_event(2), _mvn(pyro_dist, q_loc).to_event(1)
    )
    assert ours.shape == ()
    torch.testing.assert_close(ours, theirs)


def test_diagonal_normal_to_multivariate_normal_kl_matches_dense_formula() -> None:
    p_loc, scale, q_loc = torch.randn(2, 3), torch.rand(2, 3) + 0.5, torch.randn(2, 3)
    q = _mvn(dist, q_loc)
    ours = dist.kl_divergence(dist.Normal(p_loc, scale).to_event(1), q)
    dense = dist.kl_divergence(dist.MultivariateNormal(p_loc, torch.diag_embed(scale**2)), q)
    assert ours.shape == (2,)
    torch.testing.assert_close(ours, dense)
    theirs = torch.distributions.kl_divergence(
        pyro_dist.Normal(p_loc, scale).to_event(1), _mvn(pyro_dist, q_loc)
    )
    torch.testing.assert_close(ours, theirs)


def test_delta_to_multivariate_normal_kl_is_minus_log_prob() -> None:
    v = torch.randn(2, 3)
    q = _mvn(dist, torch.zeros(3))
    kl = dist.kl_divergence(dist.Delta(v).to_event(1), q)
    torch.testing.assert_close(kl, -q.log_prob(v))


def test_independent_to_multivariate_normal_kl_rejects_other_bases() -> None:
    with pytest.raises(NotImplementedError):
        dist.kl_divergence(dist.Laplace(torch.zeros(3), 1.0).to_event(1), _mvn(dist, torch.zeros(3)))

"""Tests for ember.distributions.transforms.permute."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import Permute, permute
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_transforms,
)


@pytest.mark.parametrize("dim", [-1, -2])
def test_matches_pyro(dim: int) -> None:
    permutation = torch.tensor([2, 0, 1])
    ours, theirs = Permute(permutation, dim=dim), pyro_transforms.Permute(permutation, dim=dim)
    x = torch.randn(2, 3, 3)
    assert_pyro_parity(ours, theirs, x)
    assert_same_declarations(ours, theirs)
    assert torch.equal(ours.inv_permutation, theirs.inv_permutation)


def test_round_trip_log_det_and_cache_keeps_dim() -> None:
    flow = permute(4)
    x = torch.randn(3, 4, dtype=torch.float64)
    assert_round_trip(flow, x, atol=0)
    assert_log_det_matches_autograd(flow, x)
    assert flow.volume_preserving
    assert Permute(torch.tensor([1, 0]), dim=-2).with_cache(0).dim == -2


def test_bad_dims() -> None:
    with pytest.raises(ValueError, match="Permute: 'dim' keyword argument must be negative"):
        Permute(torch.tensor([0]), dim=1)
    with pytest.raises(ValueError, match=r"permute: event shape \[4\] must have same length as event_dim 2"):
        permute(4, dim=-2)
    assert permute([3, 5], dim=-2).permutation.shape == (3,)

"""Tests for ember.distributions.transforms.haar."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import HaarTransform
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_transforms,
)


@pytest.mark.parametrize(("dim", "flip"), [(-1, False), (-1, True), (-2, False)])
def test_matches_pyro_round_trips_and_has_unit_jacobian(dim: int, flip: bool) -> None:
    ours, theirs = HaarTransform(dim=dim, flip=flip), pyro_transforms.HaarTransform(dim=dim, flip=flip)
    x = torch.randn(2, 7, 5)
    assert_pyro_parity(ours, theirs, x, atol=1e-5)
    assert_same_declarations(ours, theirs)
    assert_round_trip(ours, x.double(), atol=1e-9)
    assert_log_det_matches_autograd(ours, x.double(), atol=1e-9)


def test_equality_cache_and_bad_dim() -> None:
    t = HaarTransform(flip=True)
    assert t == HaarTransform(flip=True) and t != HaarTransform() and hash(t) == hash(HaarTransform(flip=True))
    assert t.with_cache()._cache_size == 1 and t.with_cache(0) is t
    with pytest.raises(AssertionError, match="dim must be a negative int"):
        HaarTransform(dim=1)
    with pytest.raises(ValueError, match=r"HaarTransform: Too few dimensions on input, shape \(3,\) with dim=-2"):
        HaarTransform(dim=-2).forward_shape(torch.Size([3]))

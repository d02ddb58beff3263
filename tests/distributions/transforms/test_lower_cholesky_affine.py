"""Tests for ember.distributions.transforms.lower_cholesky_affine."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import LowerCholeskyAffine
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_transforms,
)


def test_matches_pyro_round_trips_and_log_det_against_autograd() -> None:
    loc = torch.randn(3, dtype=torch.float64)
    scale_tril = torch.randn(3, 3, dtype=torch.float64).tril(-1) + torch.diag(torch.rand(3, dtype=torch.float64) + 0.5)
    ours, theirs = LowerCholeskyAffine(loc, scale_tril), pyro_transforms.LowerCholeskyAffine(loc, scale_tril)
    x = torch.randn(4, 3, dtype=torch.float64)
    assert_pyro_parity(ours, theirs, x)
    assert_same_declarations(ours, theirs)
    assert_round_trip(ours, x, atol=1e-12)
    assert_log_det_matches_autograd(ours, x, atol=1e-12)
    assert ours.with_cache()._cache_size == 1


def test_mismatched_sizes_name_the_transform_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"LowerCholeskyAffine: loc and scale_tril must be of size D and D x D.*\(3,\), \(2, 2\)"):
        LowerCholeskyAffine(torch.zeros(3), torch.eye(2))

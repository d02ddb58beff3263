"""Tests for ember.distributions.transforms.power."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import PositivePowerTransform
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_transforms,
)


def test_matches_pyro_round_trips_and_slopes_against_autograd() -> None:
    exponent = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)
    ours, theirs = PositivePowerTransform(exponent), pyro_transforms.PositivePowerTransform(exponent)
    x = torch.randn(4, 3, dtype=torch.float64)
    assert_pyro_parity(ours, theirs, x)
    assert_same_declarations(ours, theirs)
    assert_round_trip(ours, x, atol=1e-12)
    assert_log_det_matches_autograd(ours, x, atol=1e-9)
    assert ours.forward_shape(torch.Size([2, 1])) == (2, 3)
    assert ours == PositivePowerTransform(exponent.clone()) and ours.with_cache()._cache_size == 1


def test_nonpositive_exponent_is_rejected_when_validating() -> None:
    with pytest.raises(ValueError, match="PositivePowerTransform: expected exponent > 0"):
        PositivePowerTransform(0.0, validate_args=True)
    assert PositivePowerTransform(2, validate_args=False).exponent.dtype == torch.float32

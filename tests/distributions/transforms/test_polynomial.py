"""Tests for ember.distributions.transforms.polynomial."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import Polynomial, polynomial
from ember.nn import AutoRegressiveNN
from tests.distributions.transforms._checks import (
    assert_cached_inverse_is_identity,
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_same_declarations,
    pyro_transforms,
)


def test_matches_pyro() -> None:
    ours, theirs = polynomial(3), pyro_transforms.polynomial(3)
    x = torch.randn(5, 3)
    assert_pyro_parity(ours, theirs, x, invertible=False, atol=1e-5)
    assert_same_declarations(ours, theirs)
    assert_cached_inverse_is_identity(ours, x)


def test_log_det_against_autograd() -> None:
    flow = Polynomial(AutoRegressiveNN(2, [8], param_dims=[6]), input_dim=2, count_degree=2, count_sum=2).double()
    # Pyro adds 1e-8 inside the log, hence the tolerance.
    assert_log_det_matches_autograd(flow, torch.randn(3, 2, dtype=torch.float64), atol=1e-6)


def test_wrong_event_size() -> None:
    with pytest.raises(RuntimeError, match=r"Polynomial: expected x with event size 3"):
        polynomial(3)(torch.zeros(4, 2))

"""Tests for ember.distributions.transforms.spline_coupling."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions.transforms import SplineCoupling, spline_coupling
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


@pytest.mark.parametrize("identity", [False, True])
@pytest.mark.parametrize(("order", "dims"), [("linear", [8, 8, 6, 8]), ("quadratic", [8, 8, 6])])
def test_matches_pyro(order: str, dims: list[int], identity: bool) -> None:
    ours = SplineCoupling(3, 1, DenseNN(1, [6], param_dims=dims), count_bins=4, order=order, identity=identity)
    theirs = pyro_transforms.SplineCoupling(3, 1, pyro_nn.DenseNN(1, [6], param_dims=dims), count_bins=4, order=order, identity=identity)
    assert_pyro_parity(ours, theirs, torch.randn(6, 3) * 2, atol=1e-5)
    assert_same_declarations(ours, theirs)


def test_round_trip_and_log_det_against_autograd() -> None:
    flow = spline_coupling(4, hidden_dims=[8]).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert_round_trip(flow, x, atol=1e-8)
    assert_log_det_matches_autograd(flow, x, atol=1e-8)
    net: Any = spline_coupling(4, split_dim=1).upper_spline.nn
    assert net.param_dims == [24, 24, 21, 24]

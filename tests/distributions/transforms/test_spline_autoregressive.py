"""Tests for ember.distributions.transforms.spline_autoregressive."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import (
    ConditionalSplineAutoregressive,
    SplineAutoregressive,
    conditional_spline_autoregressive,
    spline_autoregressive,
)
from ember.nn import AutoRegressiveNN, ConditionalAutoRegressiveNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)

PERMUTATION = torch.tensor([1, 2, 0])


@pytest.mark.parametrize(("order", "dims"), [("linear", [6, 6, 5, 6]), ("quadratic", [6, 6, 5])])
def test_matches_pyro(order: str, dims: list[int]) -> None:
    ours = SplineAutoregressive(3, AutoRegressiveNN(3, [12], param_dims=dims, permutation=PERMUTATION), count_bins=6, order=order)
    theirs = pyro_transforms.SplineAutoregressive(
        3, pyro_nn.AutoRegressiveNN(3, [12], param_dims=dims, permutation=PERMUTATION), count_bins=6, order=order
    )
    assert_pyro_parity(ours, theirs, torch.randn(7, 3), atol=1e-5)
    assert_same_declarations(ours, theirs)


def test_round_trip_and_log_det_against_autograd() -> None:
    flow = spline_autoregressive(3, hidden_dims=[9]).double()
    x = torch.randn(3, 3, dtype=torch.float64)
    assert_round_trip(flow, x, atol=1e-8)
    assert_log_det_matches_autograd(flow, x, atol=1e-8)


def test_conditional_matches_pyro() -> None:
    dims = [4, 4, 3, 4]
    ours = ConditionalSplineAutoregressive(3, ConditionalAutoRegressiveNN(3, 2, [9], param_dims=dims, permutation=PERMUTATION), count_bins=4)
    theirs = pyro_transforms.ConditionalSplineAutoregressive(
        3, pyro_nn.ConditionalAutoRegressiveNN(3, 2, [9], param_dims=dims, permutation=PERMUTATION), count_bins=4
    )
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(5, 3), atol=1e-5)
    assert conditional_spline_autoregressive(3, 2).condition(context)(torch.zeros(3)).shape == (3,)

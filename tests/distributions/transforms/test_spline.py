"""Tests for ember.distributions.transforms.spline (elementwise monotonic splines)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions.transforms import ConditionalSpline, Spline, conditional_spline, spline
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


@pytest.mark.parametrize("order", ["linear", "quadratic"])
def test_matches_pyro_inside_and_outside_the_interval(order: str) -> None:
    ours, theirs = Spline(3, count_bins=5, bound=2.0, order=order), pyro_transforms.Spline(3, count_bins=5, bound=2.0, order=order)
    x = torch.randn(50, 3) * 2  # about a third of the points fall outside [-2, 2]
    assert_pyro_parity(ours, theirs, x, atol=1e-5)
    assert_same_declarations(ours, theirs)


@pytest.mark.parametrize("order", ["linear", "quadratic"])
def test_round_trip_and_slopes_against_autograd(order: str) -> None:
    flow = Spline(2, count_bins=6, order=order).double()
    x = torch.linspace(-4, 4, 40, dtype=torch.float64).reshape(20, 2)
    assert_round_trip(flow, x, atol=1e-8)
    assert_log_det_matches_autograd(flow, x, atol=1e-8)


def test_identity_outside_the_interval_with_finite_gradients() -> None:
    flow = Spline(1, bound=1.0, order="quadratic")
    x = torch.tensor([[-3.0], [3.0], [0.2]], requires_grad=True)
    y = flow(x)
    assert torch.equal(y[:2], x[:2])
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in flow.parameters())
    inverse = flow.inv(torch.tensor([[-3.0], [3.0]], requires_grad=True))
    assert torch.equal(inverse.detach(), torch.tensor([[-3.0], [3.0]]))


@pytest.mark.parametrize("order", ["linear", "quadratic"])
def test_conditional_spline_matches_pyro_for_a_batch_of_contexts(order: str) -> None:
    sizes = [3 * 4, 3 * 4, 3 * 3] + ([3 * 4] if order == "linear" else [])
    ours = ConditionalSpline(DenseNN(2, [8], param_dims=sizes), 3, 4, order=order)
    theirs = pyro_transforms.ConditionalSpline(pyro_nn.DenseNN(2, [8], param_dims=sizes), 3, 4, order=order)
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(6, 2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(6, 3), atol=1e-5)


def test_helpers() -> None:
    assert spline(2, count_bins=3).unnormalized_widths.shape == (2, 3)
    flow = conditional_spline(2, 4, order="quadratic")
    net: Any = flow.nn
    assert net.param_dims == [16, 16, 14]
    assert flow.condition(torch.zeros(4))(torch.zeros(2)).shape == (2,)


def test_bad_order_and_event_size() -> None:
    with pytest.raises(ValueError, match="Spline: keyword argument 'order' must be one of"):
        Spline(2, order="cubic")
    with pytest.raises(ValueError, match="conditional_spline: keyword argument 'order'"):
        conditional_spline(2, 3, order="cubic")
    with pytest.raises(RuntimeError, match=r"Spline: expected x with event size 2 .* shape \(4, 3\)"):
        Spline(2)(torch.zeros(4, 3))

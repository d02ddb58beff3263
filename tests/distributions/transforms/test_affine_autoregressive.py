"""Tests for ember.distributions.transforms.affine_autoregressive (inverse autoregressive flows)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions.transforms import (
    AffineAutoregressive,
    ConditionalAffineAutoregressive,
    affine_autoregressive,
    conditional_affine_autoregressive,
)
from ember.nn import AutoRegressiveNN, ConditionalAutoRegressiveNN
from tests.distributions.transforms._checks import (
    assert_cached_inverse_is_identity,
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)

PERMUTATION = torch.tensor([2, 0, 3, 1])


@pytest.mark.parametrize("stable", [False, True])
def test_matches_pyro_forward_inverse_and_log_det(stable: bool) -> None:
    ours = AffineAutoregressive(AutoRegressiveNN(4, [12], permutation=PERMUTATION), stable=stable)
    theirs = pyro_transforms.AffineAutoregressive(pyro_nn.AutoRegressiveNN(4, [12], permutation=PERMUTATION), stable=stable)
    assert_pyro_parity(ours, theirs, torch.randn(5, 4), atol=1e-5)
    assert_same_declarations(ours, theirs)
    assert ours.autoregressive and ours.sign == 1


@pytest.mark.parametrize("stable", [False, True])
def test_round_trip_and_log_det_against_autograd(stable: bool) -> None:
    flow = AffineAutoregressive(AutoRegressiveNN(3, [10], skip_connections=True), stable=stable).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    assert_round_trip(flow, x, atol=1e-9)
    assert_log_det_matches_autograd(flow, x, atol=1e-9)
    assert_cached_inverse_is_identity(flow, x)


def test_log_scale_is_clipped_with_gradients_passing_through() -> None:
    arn = AutoRegressiveNN(2, [6])
    with torch.no_grad():
        last: Any = arn.layers[-1]
        last.bias.fill_(10.0)  # log-scale far above the clip
    flow = AffineAutoregressive(arn, log_scale_max_clip=1.0)
    x = torch.randn(3, 2)
    log_det = flow.log_abs_det_jacobian(x, flow(x))
    assert torch.allclose(log_det, torch.full((3,), 2.0))


def test_conditional_flow_matches_pyro_for_the_same_context() -> None:
    context = torch.randn(3)
    ours = ConditionalAffineAutoregressive(ConditionalAutoRegressiveNN(4, 3, [12], permutation=PERMUTATION))
    theirs = pyro_transforms.ConditionalAffineAutoregressive(
        pyro_nn.ConditionalAutoRegressiveNN(4, 3, [12], permutation=PERMUTATION)
    )
    ours.load_state_dict(theirs.state_dict())
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(5, 4), atol=1e-5)


def test_helpers_build_pyros_default_networks() -> None:
    flow = affine_autoregressive(3)
    assert isinstance(flow.arn, AutoRegressiveNN) and flow.arn.hidden_dims == [10]
    conditional = conditional_affine_autoregressive(3, 2, stable=True)
    assert conditional.nn.hidden_dims == [30] and conditional.condition(torch.zeros(2)).stable
    theirs = pyro_transforms.affine_autoregressive(3)
    assert set(flow.state_dict()) == set(theirs.state_dict())


def test_a_flow_in_a_transformed_distribution_scores_its_samples() -> None:
    flow = affine_autoregressive(2)
    base: Any = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    d = dist.TransformedDistribution(base, [flow])
    y = d.rsample(torch.Size([6]))
    x = flow.inv(y)
    expected = base.log_prob(x) - flow.log_abs_det_jacobian(x, y)
    assert torch.allclose(d.log_prob(y), expected)


def test_wrong_event_size_names_the_transform_and_shapes() -> None:
    flow = affine_autoregressive(3)
    with pytest.raises(RuntimeError, match=r"AffineAutoregressive: expected x with event size 3 .* shape \(5, 4\)"):
        flow(torch.randn(5, 4))
    with pytest.raises(RuntimeError, match=r"AffineAutoregressive: expected y with event size 3"):
        flow.inv(torch.randn(2))


def test_a_flow_on_the_wrong_event_dim_or_size_fails_as_in_pyro() -> None:
    scalar: Any = dist.Normal(0.0, 1.0)
    with pytest.raises(ValueError, match=r"base_distribution needs to have shape with size at least 1, but got torch.Size\(\[\]\)"):
        dist.TransformedDistribution(scalar, [affine_autoregressive(3)])
    too_wide: Any = dist.Normal(torch.zeros(4), 1.0).to_event(1)
    d = dist.TransformedDistribution(too_wide, [affine_autoregressive(3)])
    with pytest.raises(RuntimeError, match=r"AffineAutoregressive: expected x with event size 3 in its last dim, got shape \(4,\)"):
        d.sample()

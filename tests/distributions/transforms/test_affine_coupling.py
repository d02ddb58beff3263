"""Tests for ember.distributions.transforms.affine_coupling (RealNVP coupling layers)."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import (
    AffineCoupling,
    ConditionalAffineCoupling,
    affine_coupling,
    conditional_affine_coupling,
)
from ember.nn import ConditionalDenseNN, DenseNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro() -> None:
    ours = AffineCoupling(2, DenseNN(2, [8], param_dims=[3, 3]))
    theirs = pyro_transforms.AffineCoupling(2, pyro_nn.DenseNN(2, [8], param_dims=[3, 3]))
    assert_pyro_parity(ours, theirs, torch.randn(5, 5), atol=1e-5)
    assert_same_declarations(ours, theirs)


def test_matches_pyro_when_splitting_an_earlier_dim() -> None:
    ours = affine_coupling([4, 3], dim=-2, hidden_dims=[10])
    theirs = pyro_transforms.affine_coupling([4, 3], dim=-2, hidden_dims=[10])
    assert ours.event_dim == theirs.event_dim == 2
    assert_pyro_parity(ours, theirs, torch.randn(2, 4, 3), atol=1e-5)


def test_first_part_passes_through_and_round_trip_and_log_det_against_autograd() -> None:
    flow = affine_coupling(4, hidden_dims=[8]).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(flow(x)[:, :2], x[:, :2])
    assert_round_trip(flow, x, atol=1e-9)
    assert_log_det_matches_autograd(flow, x, atol=1e-9)


def test_conditional_matches_pyro() -> None:
    ours = ConditionalAffineCoupling(1, ConditionalDenseNN(1, 2, [6], param_dims=[2, 2]))
    theirs = pyro_transforms.ConditionalAffineCoupling(1, pyro_nn.ConditionalDenseNN(1, 2, [6], param_dims=[2, 2]))
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(4, 3), atol=1e-5)
    assert conditional_affine_coupling(3, 2).condition(context)(torch.zeros(3)).shape == (3,)


def test_bad_dims_and_shapes() -> None:
    with pytest.raises(ValueError, match="AffineCoupling: 'dim' keyword argument must be negative"):
        AffineCoupling(1, DenseNN(1, [4]), dim=0)
    with pytest.raises(ValueError, match=r"affine_coupling: event shape \[4, 3\] must have same length as event_dim 3"):
        affine_coupling([4, 3], dim=-3)
    with pytest.raises(RuntimeError, match=r"AffineCoupling: split_dim=2 must lie strictly inside the event, got shape \(5, 2\)"):
        affine_coupling(4)(torch.zeros(5, 2))

"""Tests for ember.distributions.transforms.generalized_channel_permute (invertible 1x1 convolutions)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions.transforms import (
    ConditionalGeneralizedChannelPermute,
    GeneralizedChannelPermute,
    conditional_generalized_channel_permute,
    generalized_channel_permute,
)
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro_and_a_per_pixel_matrix_product() -> None:
    ours, theirs = GeneralizedChannelPermute(3), pyro_transforms.GeneralizedChannelPermute(3)
    x = torch.randn(2, 3, 4, 5)
    assert_pyro_parity(ours, theirs, x, atol=1e-5)
    assert_same_declarations(ours, theirs)
    permutation: Any = ours.permutation
    weight = permutation @ ours.L @ ours.U
    assert torch.allclose(ours(x), torch.einsum("ij,bjhw->bihw", weight, x), atol=1e-5)


def test_round_trip_and_log_det_against_autograd() -> None:
    flow = generalized_channel_permute(channels=2, permutation=torch.tensor([1, 0])).double()
    x = torch.randn(2, 2, 2, 3, dtype=torch.float64)
    assert_round_trip(flow, x, atol=1e-9)
    assert_log_det_matches_autograd(flow, x, atol=1e-9)


def test_conditional_matches_pyro() -> None:
    permutation = torch.tensor([2, 0, 1])
    ours = ConditionalGeneralizedChannelPermute(DenseNN(2, [6], param_dims=[9]), 3, permutation)
    theirs = pyro_transforms.ConditionalGeneralizedChannelPermute(pyro_nn.DenseNN(2, [6], param_dims=[9]), 3, permutation)
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(2, 3, 2, 2), atol=1e-4)
    assert conditional_generalized_channel_permute(2).condition(context)(torch.zeros(3, 2, 2)).shape == (3, 2, 2)


def test_bad_permutation_length() -> None:
    with pytest.raises(ValueError, match='GeneralizedChannelPermute: keyword argument "permutation" expected to have 3 elements but 2 found'):
        GeneralizedChannelPermute(3, permutation=torch.tensor([1, 0]))

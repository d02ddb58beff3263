"""Tests for ember.distributions.transforms.householder."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import ConditionalHouseholder, Householder, conditional_householder, householder
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro_and_is_orthogonal() -> None:
    ours, theirs = Householder(4, count_transforms=3), pyro_transforms.Householder(4, count_transforms=3)
    x = torch.randn(5, 4)
    assert_pyro_parity(ours, theirs, x)
    assert_same_declarations(ours, theirs)
    assert torch.allclose(ours(x).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert ours.volume_preserving


def test_round_trip_and_log_det_against_autograd() -> None:
    flow = householder(3).double()
    x = torch.randn(3, 3, dtype=torch.float64)
    assert_round_trip(flow, x, atol=1e-12)
    assert_log_det_matches_autograd(flow, x, atol=1e-9)


@pytest.mark.parametrize("count", [1, 2])
def test_conditional_matches_pyro(count: int) -> None:
    ours = ConditionalHouseholder(3, DenseNN(2, [6], param_dims=[3] * count), count)
    theirs = pyro_transforms.ConditionalHouseholder(3, pyro_nn.DenseNN(2, [6], param_dims=[3] * count), count)
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(4, 3))
    assert conditional_householder(3, 2, count_transforms=count).count_transforms == count


def test_count_checks() -> None:
    with pytest.raises(ValueError, match=r"Householder: number of Householder transforms, 0, is less than 1!"):
        Householder(3, count_transforms=0)
    with pytest.warns(UserWarning, match="is greater than input dimension 2, which is an over-parametrization"):
        Householder(2, count_transforms=3)

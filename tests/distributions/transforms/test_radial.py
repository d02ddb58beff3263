"""Tests for ember.distributions.transforms.radial."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions.transforms import ConditionalRadial, Radial, conditional_radial, radial
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_cached_inverse_is_identity,
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro() -> None:
    ours, theirs = Radial(3), pyro_transforms.Radial(3)
    x = torch.randn(5, 3)
    assert_pyro_parity(ours, theirs, x, invertible=False)
    assert_same_declarations(ours, theirs)
    assert_cached_inverse_is_identity(ours, x)
    with pytest.raises(KeyError, match="Radial object expected to find key in intermediates cache"):
        ours.inv(torch.randn(5, 3))


def test_log_det_against_autograd() -> None:
    assert_log_det_matches_autograd(radial(4).double(), torch.randn(3, 4, dtype=torch.float64), atol=1e-9)


def test_conditional_matches_pyro() -> None:
    ours = ConditionalRadial(DenseNN(2, [6], param_dims=[3, 1, 1]))
    theirs = pyro_transforms.ConditionalRadial(pyro_nn.DenseNN(2, [6], param_dims=[3, 1, 1]))
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(4, 3), invertible=False)
    net: Any = conditional_radial(3, 2).nn
    assert net.param_dims == [3, 1, 1]

"""Tests for ember.distributions.transforms.radial."""

from __future__ import annotations

from typing import Any

import torch

from ember.distributions.transforms import ConditionalRadial, Radial, conditional_radial, radial
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_conditioned_matches_pyro,
    assert_log_det_matches_autograd,
    assert_matches_pyro_and_only_cached_values_invert,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro() -> None:
    assert_matches_pyro_and_only_cached_values_invert(Radial(3), pyro_transforms.Radial(3), torch.randn(5, 3))


def test_log_det_against_autograd() -> None:
    assert_log_det_matches_autograd(radial(4).double(), torch.randn(3, 4, dtype=torch.float64), atol=1e-9)


def test_conditional_matches_pyro() -> None:
    ours = ConditionalRadial(DenseNN(2, [6], param_dims=[3, 1, 1]))
    theirs = pyro_transforms.ConditionalRadial(pyro_nn.DenseNN(2, [6], param_dims=[3, 1, 1]))
    assert_conditioned_matches_pyro(ours, theirs, torch.randn(2), torch.randn(4, 3))
    net: Any = conditional_radial(3, 2).nn
    assert net.param_dims == [3, 1, 1]

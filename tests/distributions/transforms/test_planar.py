"""Tests for ember.distributions.transforms.planar."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions.transforms import ConditionalPlanar, Planar, conditional_planar, planar
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_conditioned_matches_pyro,
    assert_log_det_matches_autograd,
    assert_matches_pyro_and_only_cached_values_invert,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro_and_only_cached_values_invert() -> None:
    assert_matches_pyro_and_only_cached_values_invert(Planar(3), pyro_transforms.Planar(3), torch.randn(5, 3))


def test_log_det_against_autograd_even_for_a_large_u() -> None:
    flow = planar(3).double()
    with torch.no_grad():
        flow.u.fill_(-4.0)  # u_hat keeps w . u_hat >= -1, so the map stays invertible
    assert_log_det_matches_autograd(flow, torch.randn(4, 3, dtype=torch.float64), atol=1e-9)


def test_conditional_matches_pyro() -> None:
    ours = ConditionalPlanar(DenseNN(2, [6], param_dims=[1, 3, 3]))
    theirs = pyro_transforms.ConditionalPlanar(pyro_nn.DenseNN(2, [6], param_dims=[1, 3, 3]))
    assert_conditioned_matches_pyro(ours, theirs, torch.randn(2), torch.randn(4, 3))
    net: Any = conditional_planar(3, 2).nn
    assert net.param_dims == [1, 3, 3]


def test_wrong_event_size() -> None:
    with pytest.raises(RuntimeError, match=r"Planar: expected x with event size 3 .* shape \(2,\)"):
        Planar(3)(torch.zeros(2))

"""Tests for ember.distributions.transforms.simplex_to_ordered."""

from __future__ import annotations

import torch

from ember.distributions.transforms import SimplexToOrderedTransform
from tests.distributions.transforms._checks import assert_pyro_parity, assert_same_declarations, pyro_transforms


def test_matches_pyro_round_trips_and_shapes() -> None:
    anchor = torch.tensor(0.4)
    ours, theirs = SimplexToOrderedTransform(anchor), pyro_transforms.SimplexToOrderedTransform(anchor)
    x = torch.softmax(torch.randn(5, 4, dtype=torch.float64), -1)
    assert_pyro_parity(ours, theirs, x)
    assert_same_declarations(ours, theirs)
    assert torch.allclose(ours.inv(ours(x).clone()), x)
    assert ours.forward_shape(torch.Size([5, 4])) == (5, 3) and ours.inverse_shape(torch.Size([3])) == (4,)
    assert (ours(x)[..., 1:] > ours(x)[..., :-1]).all()
    assert ours == SimplexToOrderedTransform(torch.tensor(0.4)) and ours != SimplexToOrderedTransform()

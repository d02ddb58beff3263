"""Tests for ember.distributions.transforms.discrete_cosine."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import DiscreteCosineTransform
from ember.infer.reparam.discrete_cosine import DiscreteCosineTransform as ReparamDiscreteCosineTransform
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_transforms,
)


@pytest.mark.parametrize(("dim", "smooth"), [(-1, 0.0), (-1, 1.5), (-2, -1.0)])
def test_matches_pyro_round_trips_and_has_unit_jacobian(dim: int, smooth: float) -> None:
    ours = DiscreteCosineTransform(dim=dim, smooth=smooth)
    theirs = pyro_transforms.DiscreteCosineTransform(dim=dim, smooth=smooth)
    x = torch.randn(2, 5, 3)
    assert_pyro_parity(ours, theirs, x, atol=1e-5)
    assert_same_declarations(ours, theirs)
    assert_round_trip(ours, x.double(), atol=1e-9)
    assert_log_det_matches_autograd(ours, x.double(), atol=1e-9)


def test_the_reparameterizer_uses_the_same_class() -> None:
    assert ReparamDiscreteCosineTransform is DiscreteCosineTransform

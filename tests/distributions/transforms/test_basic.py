"""Tests for ember.distributions.transforms.basic (ELU and leaky ReLU bijections)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions import constraints
from ember.distributions.transforms import ELUTransform, LeakyReLUTransform, elu, leaky_relu
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    pyro_transforms,
)


@pytest.mark.parametrize("name", ["ELUTransform", "LeakyReLUTransform"])
def test_matches_pyro_round_trips_and_slopes_against_autograd(name: str) -> None:
    ours: Any = {"ELUTransform": elu, "LeakyReLUTransform": leaky_relu}[name]()
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    assert_pyro_parity(ours, getattr(pyro_transforms, name)(), x.float(), atol=1e-5)
    assert_round_trip(ours, x, atol=1e-7)
    assert_log_det_matches_autograd(ours, x[x != 0], atol=1e-9)
    assert ours == type(ours)() and hash(ours) == hash(type(ours)()) and ours.sign == 1


def test_elu_codomain_is_its_range() -> None:
    t: Any = ELUTransform()
    codomain: Any = t.codomain
    assert type(codomain).__name__ == "_GreaterThan" and codomain.lower_bound == -1.0
    assert bool(codomain.check(t(torch.tensor(-5.0))))
    assert LeakyReLUTransform().codomain is constraints.real

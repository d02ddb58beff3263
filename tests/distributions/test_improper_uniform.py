"""Tests for ImproperUniform (improper_uniform.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from ember.distributions import constraints
from tests.distributions._zoo import assert_close, pyro_dist


def test_log_prob_is_zero_with_pyro_shapes() -> None:
    d = dist.ImproperUniform(constraints.positive, (3,), (2,))
    p = pyro_dist.ImproperUniform(constraints.positive, (3,), (2,))
    for value in (torch.ones(3, 2), torch.ones(5, 1, 2), torch.ones(2)):
        assert_close(d.log_prob(value), p.log_prob(value))
    assert d.support is constraints.positive
    expanded = d.expand((4, 3))
    assert expanded.batch_shape == (4, 3) and expanded.event_shape == (2,)
    assert expanded.support is constraints.positive


def test_cannot_sample_and_rejects_non_constraints() -> None:
    with pytest.raises(NotImplementedError, match="does not support sampling"):
        dist.ImproperUniform(constraints.real, (), ()).sample()
    with pytest.raises(TypeError, match="ImproperUniform: expected support to be a Constraint"):
        dist.ImproperUniform("real", (), ())  # type: ignore[arg-type]

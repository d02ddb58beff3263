"""Tests for ember.distributions.Unit, checked against pyro.distributions.Unit."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

from ember.distributions import Unit

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize("log_factor", [1.5, torch.tensor(-2.0), torch.randn(3), torch.randn(2, 3)])
def test_shapes_and_samples_match_pyro(log_factor: torch.Tensor | float) -> None:
    ours, theirs = Unit(log_factor), pyro_dist.Unit(log_factor)
    batch = torch.as_tensor(log_factor).shape
    assert ours.batch_shape == theirs.batch_shape == batch
    assert ours.event_shape == theirs.event_shape == (0,)
    for sample_shape in [(), (4,)]:
        x = ours.sample(sample_shape)
        assert x.shape == theirs.sample(sample_shape).shape == torch.Size(sample_shape) + batch + (0,)
        assert x.numel() == 0
        assert ours.rsample(sample_shape).shape == x.shape
        assert torch.equal(ours.log_prob(x), theirs.log_prob(x))


def test_log_prob_is_log_factor_broadcast() -> None:
    log_factor = torch.tensor([1.0, 2.0])
    d = Unit(log_factor)
    assert torch.equal(d.log_prob(d.sample()), log_factor)
    lp = d.log_prob(torch.empty(5, 1, 0))
    assert lp.shape == (5, 2) and torch.equal(lp[3], log_factor)


def test_log_factor_keeps_gradients() -> None:
    log_factor = torch.tensor(0.5, requires_grad=True)
    lp = Unit(log_factor).log_prob(torch.empty(0))
    (grad,) = torch.autograd.grad(lp, [log_factor])
    assert grad.item() == 1.0


def test_has_rsample_stored_only_when_given() -> None:
    assert "has_rsample" not in Unit(0.0).__dict__
    assert Unit(0.0).has_rsample is False
    d = Unit(0.0, has_rsample=True)
    assert d.__dict__["has_rsample"] is True and d.has_rsample is True
    assert Unit(0.0, has_rsample=False).__dict__["has_rsample"] is False
    parts = d.score_parts(torch.empty(0))
    assert parts.score_function == 0


def test_has_rsample_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Unit(0.0, True)  # type: ignore[call-arg]  # the point of the test


@pytest.mark.parametrize("has_rsample", [None, True, False])
def test_expand_matches_pyro(has_rsample: bool | None) -> None:
    log_factor = torch.tensor([1.0, 2.0])
    ours = Unit(log_factor, has_rsample=has_rsample).expand([3, 2])
    theirs = pyro_dist.Unit(log_factor, has_rsample=has_rsample).expand([3, 2])
    assert type(ours) is Unit
    assert ours.batch_shape == theirs.batch_shape == (3, 2)
    assert ours.event_shape == (0,)
    assert ours.log_factor.shape == (3, 2)
    assert ours.sample().shape == theirs.sample().shape == (3, 2, 0)
    assert ("has_rsample" in ours.__dict__) == (has_rsample is not None)
    assert ours.has_rsample == theirs.has_rsample
    assert torch.equal(ours.log_prob(ours.sample()), theirs.log_prob(theirs.sample()))


def test_expand_by_and_mask() -> None:
    d = Unit(torch.tensor([1.0, 2.0])).expand_by([4])
    assert d.batch_shape == (4, 2) and d.sample().shape == (4, 2, 0)
    masked = Unit(torch.tensor([1.0, 2.0])).mask(torch.tensor([True, False]))
    assert torch.equal(masked.log_prob(torch.empty(2, 0)), torch.tensor([1.0, 0.0]))


def test_validation_rejects_nan_log_factor() -> None:
    with pytest.raises(ValueError, match="log_factor"):
        Unit(torch.tensor(float("nan")), validate_args=True)


def test_infer_shapes() -> None:
    assert Unit.infer_shapes(log_factor=(3, 2)) == ((3, 2), (0,))

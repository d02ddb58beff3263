"""Tests for ember.distributions.Delta, checked against pyro.distributions.Delta."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions import Delta

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize(
    ("shape", "event_dim"), [((), 0), ((3,), 0), ((3,), 1), ((2, 3), 1), ((2, 3), 2)]
)
def test_shapes_match_pyro(shape: tuple[int, ...], event_dim: int) -> None:
    v = torch.randn(shape)
    ours, theirs = Delta(v, event_dim=event_dim), pyro_dist.Delta(v, event_dim=event_dim)
    assert ours.batch_shape == theirs.batch_shape == shape[: len(shape) - event_dim]
    assert ours.event_shape == theirs.event_shape == shape[len(shape) - event_dim :]
    assert ours.log_density.shape == ours.batch_shape
    assert ours.has_rsample is True


def test_event_dim_larger_than_v_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"Expected event_dim <= v.dim\(\), actual 2 vs 1"):
        Delta(torch.zeros(3), event_dim=2)


def test_log_density_shape_checked_when_validating() -> None:
    with pytest.raises(ValueError, match="Expected log_density.shape"):
        Delta(torch.zeros(3), log_density=torch.zeros(2), validate_args=True)
    # without explicit validation a broadcastable log_density is accepted, as in Pyro
    d = Delta(torch.zeros(3), log_density=torch.tensor(1.0))
    assert torch.equal(d.log_prob(torch.zeros(3)), torch.ones(3))


def test_samples_are_v_and_carry_gradients() -> None:
    v = torch.tensor([1.0, 2.0], requires_grad=True)
    d = Delta(v)
    x = d.rsample((3,))
    assert x.shape == (3, 2) and torch.equal(x, v.detach().expand(3, 2))
    (grad,) = torch.autograd.grad(x.sum(), [v])
    assert torch.equal(grad, torch.full((2,), 3.0))
    assert d().requires_grad


def test_log_prob_is_zero_at_v_and_minus_inf_elsewhere() -> None:
    d = Delta(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), event_dim=1)
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert torch.equal(d.log_prob(x), torch.tensor([0.0, float("-inf")]))


def test_log_prob_adds_log_density() -> None:
    d = Delta(torch.zeros(2), log_density=torch.tensor([0.5, -1.0]))
    assert torch.equal(d.log_prob(torch.zeros(2)), torch.tensor([0.5, -1.0]))
    assert torch.equal(Delta(torch.zeros(2), 2.0).log_prob(torch.zeros(2)), torch.tensor([2.0, 2.0]))


@pytest.mark.parametrize("event_dim", [0, 1])
@pytest.mark.parametrize("value_shape", [(2, 3), (4, 2, 3)])
def test_log_prob_matches_pyro(event_dim: int, value_shape: tuple[int, ...]) -> None:
    v = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    x = v.expand(value_shape).clone()
    x[..., 0, 1] = 7.0
    density = torch.full(v.shape[: v.dim() - event_dim], 0.25)
    ours = Delta(v, density, event_dim=event_dim).log_prob(x)
    theirs = pyro_dist.Delta(v, density, event_dim=event_dim).log_prob(x)
    assert torch.equal(ours, theirs)


def test_score_parts_are_pathwise() -> None:
    d = Delta(torch.zeros(2))
    parts = d.score_parts(torch.zeros(2))
    assert parts.score_function == 0 and parts.entropy_term is parts.log_prob


@pytest.mark.parametrize("event_dim", [0, 1])
def test_expand_matches_pyro(event_dim: int) -> None:
    v = torch.tensor([[1.0, 2.0]])
    ours = Delta(v, torch.full(v.shape[: 2 - event_dim], 0.5), event_dim=event_dim)
    theirs = pyro_dist.Delta(v, torch.full(v.shape[: 2 - event_dim], 0.5), event_dim=event_dim)
    shape = (3, 4, 2) if event_dim == 0 else (3, 4)
    ours_e, theirs_e = ours.expand(shape), theirs.expand(shape)
    assert type(ours_e) is Delta
    assert ours_e.batch_shape == theirs_e.batch_shape and ours_e.v.shape == theirs_e.v.shape
    assert ours_e.log_density.shape == ours_e.batch_shape
    x = ours_e.sample((2,))
    assert torch.equal(x, theirs_e.sample((2,)))
    assert torch.equal(ours_e.log_prob(x), theirs_e.log_prob(x))


def test_expand_by_and_to_event_match_pyro() -> None:
    v = torch.tensor([1.0, 2.0])
    ours = Delta(v).expand_by([3]).to_event(2)
    theirs = pyro_dist.Delta(v).expand_by([3]).to_event(2)
    assert ours.batch_shape == theirs.batch_shape == () and ours.event_shape == (3, 2)
    x = ours.sample()
    assert torch.equal(ours.log_prob(x), theirs.log_prob(x))


def test_expand_keeps_instance_has_rsample_and_validation() -> None:
    d = Delta(torch.zeros(2), validate_args=False).has_rsample_(False)
    expanded = d.expand([3, 2])
    assert expanded.has_rsample is False and expanded._validate_args is False
    assert Delta(torch.zeros(2)).expand([3, 2]).has_rsample is True


def test_mask_false_as_used_by_deterministic() -> None:
    d = Delta(torch.tensor([1.0, 2.0]), event_dim=1).mask(False)
    assert torch.equal(d.log_prob(torch.tensor([5.0, 5.0])), torch.tensor(0.0))
    assert torch.equal(d(), torch.tensor([1.0, 2.0]))


def test_support_mean_and_variance() -> None:
    v = torch.randn(2, 3)
    d = Delta(v, event_dim=1)
    support = d.support
    assert isinstance(support, torch.distributions.constraints.independent)
    assert support.event_dim == 1
    assert d.mean is v
    assert torch.equal(d.variance, torch.zeros(2, 3))


def test_kl_divergence_from_delta_is_minus_log_prob() -> None:
    v = torch.tensor([0.0, 1.0])
    q = dist.Normal(torch.zeros(2), 1.0)
    kl = dist.kl_divergence(Delta(v), q)
    assert torch.allclose(kl, -q.log_prob(v))

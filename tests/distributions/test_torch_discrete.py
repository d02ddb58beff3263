"""Tests for the discrete distributions' Pyro-specific behaviour (torch_discrete.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")

_LOGITS = torch.tensor([[0.1, -1.0, 2.0], [0.5, 0.5, -0.3]])


def test_categorical_enumerate_support_marks_only_unexpanded_values() -> None:
    d = dist.Categorical(logits=_LOGITS)
    values = d.enumerate_support(expand=False)
    assert getattr(values, "_pyro_categorical_support") == id(d)
    assert values.shape == (3, 1)
    expanded = d.enumerate_support(expand=True)
    assert not hasattr(expanded, "_pyro_categorical_support")
    assert expanded.shape == (3, 2)
    pyro_values = pyro_dist.Categorical(logits=_LOGITS).enumerate_support(expand=False)
    assert torch.equal(values, pyro_values)


@pytest.mark.parametrize("extra_dims", [0, 1, 3])
def test_categorical_fast_log_prob_equals_generic_log_prob(extra_dims: int) -> None:
    d = dist.Categorical(logits=_LOGITS)
    values = d.enumerate_support(expand=False)
    # Enumeration moves the support to a dimension further left and re-marks it.
    values = values.reshape((3,) + (1,) * (extra_dims + 1))
    setattr(values, "_pyro_categorical_support", id(d))
    fast = d.log_prob(values)
    generic = d.log_prob(values.clone())  # the copy is unmarked: the generic path
    assert fast.shape == generic.shape == (3,) + (1,) * extra_dims + (2,)
    assert torch.allclose(fast, generic)
    pyro_d = pyro_dist.Categorical(logits=_LOGITS)
    pyro_values = values.clone()
    setattr(pyro_values, "_pyro_categorical_support", id(pyro_d))
    assert torch.allclose(fast, pyro_d.log_prob(pyro_values))


def test_categorical_fast_path_ignores_values_marked_by_another_distribution() -> None:
    d, other = dist.Categorical(logits=_LOGITS), dist.Categorical(logits=_LOGITS * 2)
    values = other.enumerate_support(expand=False)
    assert torch.allclose(d.log_prob(values), d.log_prob(values.clone()))


def test_categorical_fast_log_prob_has_gradients() -> None:
    logits = _LOGITS.clone().requires_grad_()
    d = dist.Categorical(logits=logits)
    (grad,) = torch.autograd.grad(d.log_prob(d.enumerate_support(expand=False)).sum(), [logits])
    assert grad.shape == logits.shape and grad.abs().sum() > 0


def test_categorical_fast_path_survives_expand() -> None:
    d = dist.Categorical(logits=_LOGITS).expand([4, 2])
    values = d.enumerate_support(expand=False)
    assert values.shape == (3, 1, 1)
    assert d.log_prob(values).shape == (3, 4, 2)
    assert torch.allclose(d.log_prob(values), d.log_prob(values.clone()))


@pytest.mark.parametrize("probs", [0.3, 0.999, 1.0 - 1e-7])
def test_geometric_log_prob_uses_logits_and_matches_pyro(probs: float) -> None:
    d = dist.Geometric(torch.tensor([probs, 0.5]))
    x = torch.tensor([[0.0, 1.0], [3.0, 10.0]])
    lp = d.log_prob(x)
    assert torch.isfinite(lp).all()
    assert torch.allclose(lp, pyro_dist.Geometric(torch.tensor([probs, 0.5])).log_prob(x))
    exact = x * torch.log1p(-torch.tensor([probs, 0.5])) + torch.log(torch.tensor([probs, 0.5]))
    assert torch.allclose(lp, exact, atol=1e-4)


def test_geometric_log_prob_validates() -> None:
    with pytest.raises(ValueError, match="support"):
        dist.Geometric(torch.tensor(0.5), validate_args=True).log_prob(torch.tensor(-1.0))


def test_poisson_sparse_log_prob_equals_dense_and_pyro() -> None:
    rate = torch.tensor([[0.5, 2.0, 4.0]], requires_grad=True)
    x = torch.tensor([[0.0, 3.0, 0.0], [1.0, 0.0, 7.0]])
    sparse = dist.Poisson(rate, is_sparse=True).log_prob(x)
    dense = dist.Poisson(rate).log_prob(x)
    assert sparse.shape == dense.shape == (2, 3)
    assert torch.allclose(sparse, dense)
    assert torch.allclose(sparse, pyro_dist.Poisson(rate, is_sparse=True).log_prob(x))
    (sparse_grad,) = torch.autograd.grad(sparse.sum(), [rate])
    (dense_grad,) = torch.autograd.grad(dense.sum(), [rate])
    assert torch.allclose(sparse_grad, dense_grad)


def test_poisson_expand_keeps_is_sparse() -> None:
    d = dist.Poisson(torch.tensor([1.0, 2.0]), is_sparse=True).expand([3, 2])
    assert type(d) is dist.Poisson and d.is_sparse and d.batch_shape == (3, 2)
    assert dist.Poisson(torch.tensor(1.0)).is_sparse is False


def test_poisson_keyword_only_arguments_like_pyro() -> None:
    with pytest.raises(TypeError):
        dist.Poisson(torch.tensor(1.0), True)  # type: ignore[call-arg]  # the point of the test


def test_binomial_and_bernoulli_enumerate_with_and_without_expand() -> None:
    b = dist.Binomial(2, torch.tensor([0.2, 0.5, 0.9]))
    assert b.enumerate_support().shape == (3, 3)
    assert torch.equal(b.enumerate_support(expand=False), torch.tensor([[0.0], [1.0], [2.0]]))
    bern = dist.Bernoulli(torch.full((2, 3), 0.5))
    assert bern.enumerate_support().shape == (2, 2, 3)
    assert bern.enumerate_support(expand=False).shape == (2, 1, 1)


@pytest.mark.parametrize(
    "shapes",
    [{"probs": (5, 3)}, {"logits": (2, 1, 4)}, {"logits": (4, 3), "total_count": (2, 1)}],
)
def test_categorical_family_infer_shapes(shapes: dict[str, tuple[int, ...]]) -> None:
    batch, event = dist.Multinomial.infer_shapes(**shapes)
    key = "logits" if "logits" in shapes else "probs"
    assert event == shapes[key][-1:]
    if "total_count" in shapes:
        assert batch == (2, 4)
    else:
        assert batch == shapes[key][:-1]
        theirs = pyro_dist.OneHotCategorical.infer_shapes(**shapes)
        assert dist.OneHotCategorical.infer_shapes(**shapes) == theirs
        assert dist.OneHotCategoricalStraightThrough.infer_shapes(**shapes) == theirs

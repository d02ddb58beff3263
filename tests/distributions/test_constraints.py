"""Tests for ember.distributions.constraints: torch's re-exports and Pyro's extras."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

from ember.distributions import constraints

# Pyro is an unannotated test oracle.
pyro_constraints: Any = importlib.import_module("pyro.distributions.constraints")

EXTRAS = [
    "corr_cholesky_constraint",
    "corr_matrix",
    "integer",
    "ordered_vector",
    "positive_ordered_vector",
    "softplus_lower_cholesky",
    "softplus_positive",
    "sphere",
    "unit_lower_cholesky",
]


def test_every_torch_constraint_is_re_exported_unchanged() -> None:
    for name in torch.distributions.constraints.__all__:
        assert name in constraints.__all__
        assert getattr(constraints, name) is getattr(torch.distributions.constraints, name)


def test_all_lists_exactly_the_public_names() -> None:
    assert set(constraints.__all__) == set(torch.distributions.constraints.__all__) | set(EXTRAS)
    for name in constraints.__all__:
        assert hasattr(constraints, name)
    assert set(EXTRAS) <= set(pyro_constraints.__all__)


@pytest.mark.parametrize("name", EXTRAS)
def test_extras_are_constraints_with_pyro_metadata(name: str) -> None:
    ours = getattr(constraints, name)
    theirs = getattr(pyro_constraints, name)
    assert isinstance(ours, torch.distributions.constraints.Constraint)
    assert ours.is_discrete == theirs.is_discrete
    # Pyro gives positive_ordered_vector event_dim 0 although its check reduces a dimension.
    expected_event_dim = 1 if name == "positive_ordered_vector" else theirs.event_dim
    assert ours.event_dim == expected_event_dim


_MATRICES = torch.tensor(
    [[[1.0, 0.0], [3.0, 1.0]], [[1.0, 1.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]]]
)
_CORRELATIONS = torch.tensor(
    [[[1.0, 0.5], [0.5, 1.0]], [[1.0, 2.0], [2.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]]]
)
_CHECK_CASES: list[tuple[str, torch.Tensor]] = [
    ("integer", torch.tensor([0.0, 1.0, -3.0, 0.5, 2.25])),
    ("ordered_vector", torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 1.0], [3.0, 2.0, 1.0]])),
    ("ordered_vector", torch.tensor([[5.0]])),
    ("positive_ordered_vector", torch.tensor([[0.5, 1.0], [-1.0, 2.0], [2.0, 1.0]])),
    ("sphere", torch.tensor([[0.6, 0.8], [1.0, 1.0], [0.0, 1.0]])),
    ("corr_matrix", _CORRELATIONS),
    ("unit_lower_cholesky", _MATRICES),
    ("softplus_positive", torch.tensor([1.0, 0.0, -1.0])),
    ("softplus_lower_cholesky", _MATRICES),
]


@pytest.mark.parametrize(("name", "value"), _CHECK_CASES)
def test_check_matches_pyro(name: str, value: torch.Tensor) -> None:
    ours = getattr(constraints, name).check(value)
    theirs = getattr(pyro_constraints, name).check(value)
    assert ours.dtype == torch.bool
    assert torch.equal(ours, theirs)
    assert not ours.all() or name == "ordered_vector"  # every case includes a violation


def test_ordered_vector_of_a_scalar_is_false() -> None:
    assert not constraints.ordered_vector.check(torch.tensor(1.0))


def test_softplus_constraints_extend_torch_classes() -> None:
    assert isinstance(constraints.softplus_positive, type(constraints.positive))
    assert constraints.softplus_positive.lower_bound == 0.0
    assert isinstance(constraints.softplus_lower_cholesky, type(constraints.lower_cholesky))
    assert type(constraints.softplus_positive) is not type(constraints.positive)

"""Tests for ember.nn.dense_nn, against pyro-ppl's pyro.nn.dense_nn."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

from ember.nn import ConditionalDenseNN, DenseNN

pyro_nn: Any = importlib.import_module("pyro.nn")


@pytest.mark.parametrize("param_dims", [[1], [4], [1, 3], [2, 2, 5]])
def test_outputs_equal_pyros_for_the_same_weights(param_dims: list[int]) -> None:
    ours, theirs = DenseNN(3, [6, 5], param_dims=param_dims), pyro_nn.DenseNN(3, [6, 5], param_dims=param_dims)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3)
    out, expected = ours(x), theirs(x)
    if isinstance(expected, torch.Tensor):
        assert isinstance(out, torch.Tensor) and torch.allclose(out, expected)
    else:
        assert isinstance(out, tuple) and all(torch.allclose(a, b) for a, b in zip(out, expected))


def test_conditional_network_concatenates_the_broadcast_context_first() -> None:
    ours = ConditionalDenseNN(2, 3, [5], param_dims=[1, 2], nonlinearity=torch.nn.Tanh())
    theirs = pyro_nn.ConditionalDenseNN(2, 3, [5], param_dims=[1, 2], nonlinearity=torch.nn.Tanh())
    ours.load_state_dict(theirs.state_dict())
    x, context = torch.randn(6, 2), torch.randn(3)
    for a, b in zip(ours(x, context), theirs(x, context)):
        assert torch.allclose(a, b)
    first = ours.layers[0]
    assert isinstance(first, torch.nn.Linear) and first.in_features == 5

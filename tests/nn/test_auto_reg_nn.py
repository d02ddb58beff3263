"""Tests for ember.nn.auto_reg_nn (MADE networks), against pyro-ppl's pyro.nn.auto_reg_nn."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

from ember.nn import AutoRegressiveNN, ConditionalAutoRegressiveNN, MaskedLinear
from ember.nn.auto_reg_nn import create_mask, sample_mask_indices

pyro_arn: Any = importlib.import_module("pyro.nn.auto_reg_nn")


@pytest.mark.parametrize("context_dim", [0, 2])
@pytest.mark.parametrize("hidden_dims", [[5], [7, 6], [4, 9, 4]])
def test_masks_equal_pyros(context_dim: int, hidden_dims: list[int]) -> None:
    permutation = torch.tensor([3, 0, 2, 1])
    ours, our_skip = create_mask(4, context_dim, hidden_dims, permutation, 3)
    theirs, their_skip = pyro_arn.create_mask(4, context_dim, hidden_dims, permutation, 3)
    assert len(ours) == len(theirs)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert torch.equal(our_skip, their_skip)
    assert torch.equal(sample_mask_indices(4, 9), pyro_arn.sample_mask_indices(4, 9))


@pytest.mark.parametrize(("param_dims", "skip"), [([1, 1], False), ([1], True), ([3, 3], False), ([2, 1, 3], True)])
def test_outputs_equal_pyros_for_the_same_weights(param_dims: list[int], skip: bool) -> None:
    permutation = torch.tensor([1, 2, 0])
    ours = AutoRegressiveNN(3, [8, 8], param_dims=param_dims, permutation=permutation, skip_connections=skip)
    theirs = pyro_arn.AutoRegressiveNN(3, [8, 8], param_dims=param_dims, permutation=permutation, skip_connections=skip)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(5, 3)
    out, expected = ours(x), theirs(x)
    if isinstance(expected, torch.Tensor):
        assert isinstance(out, torch.Tensor) and torch.allclose(out, expected)
    else:
        assert isinstance(out, tuple) and len(out) == len(expected)
        assert all(torch.allclose(a, b) for a, b in zip(out, expected))
    assert torch.equal(ours.get_permutation(), permutation)


def test_each_output_depends_only_on_earlier_inputs_in_the_permutation() -> None:
    permutation = torch.tensor([2, 0, 3, 1])
    net = AutoRegressiveNN(4, [16], param_dims=[1], permutation=permutation, skip_connections=True).double()
    jacobian_of: Any = torch.autograd.functional.jacobian  # torch: unannotated
    jac = jacobian_of(lambda v: net(v), torch.randn(4, dtype=torch.float64))
    rank = torch.argsort(permutation)
    allowed = rank.unsqueeze(-1) > rank.unsqueeze(0)  # output i may read input j iff j comes first
    assert (jac[~allowed] == 0).all()
    assert (jac[allowed] != 0).any()


def test_conditional_network_matches_pyro_and_broadcasts_the_context() -> None:
    permutation = torch.tensor([0, 2, 1])
    ours = ConditionalAutoRegressiveNN(3, 2, [9], permutation=permutation)
    theirs = pyro_arn.ConditionalAutoRegressiveNN(3, 2, [9], permutation=permutation)
    ours.load_state_dict(theirs.state_dict())
    x, context = torch.randn(4, 3), torch.randn(2)
    for a, b in zip(ours(x, context), theirs(x, context)):
        assert a.shape == (4, 3) and torch.allclose(a, b)


def test_masked_linear_applies_its_mask() -> None:
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    layer = MaskedLinear(2, 3, mask)
    x = torch.randn(4, 2)
    assert torch.allclose(layer(x), x @ (layer.weight * mask).T + layer.bias)
    assert "mask" in dict(layer.named_buffers())


def test_narrow_hidden_layers_and_one_input() -> None:
    with pytest.raises(ValueError, match=r"AutoRegressiveNN: hidden dimension must not be less than input dimension, got hidden_dims=\[2\] with input_dim=3"):
        AutoRegressiveNN(3, [2])
    with pytest.warns(UserWarning, match="AutoRegressiveNN input_dim = 1. Consider using an affine transformation instead."):
        AutoRegressiveNN(1, [3])


def test_gradients_equal_pyros_through_the_in_place_relu() -> None:
    permutation = torch.tensor([2, 1, 0])
    ours = AutoRegressiveNN(3, [6, 6], permutation=permutation)
    theirs = pyro_arn.AutoRegressiveNN(3, [6, 6], permutation=permutation)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 3)
    for net in (ours, theirs):
        mean, log_scale = net(x)
        torch.autograd.backward((mean * log_scale).sum())
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert a.grad is not None and b.grad is not None and torch.allclose(a.grad, b.grad), name

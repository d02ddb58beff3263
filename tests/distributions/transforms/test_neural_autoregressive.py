"""Tests for ember.distributions.transforms.neural_autoregressive."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import (
    ConditionalNeuralAutoregressive,
    NeuralAutoregressive,
    conditional_neural_autoregressive,
    neural_autoregressive,
)
from ember.nn import AutoRegressiveNN, ConditionalAutoRegressiveNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)

PERMUTATION = torch.tensor([1, 0, 2])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "ELU", "LeakyReLU"])
def test_matches_pyro(activation: str) -> None:
    ours = NeuralAutoregressive(AutoRegressiveNN(3, [10], param_dims=[4] * 3, permutation=PERMUTATION), 4, activation)
    theirs = pyro_transforms.NeuralAutoregressive(
        pyro_nn.AutoRegressiveNN(3, [10], param_dims=[4] * 3, permutation=PERMUTATION), 4, activation
    )
    assert_pyro_parity(ours, theirs, torch.randn(5, 3), invertible=False, atol=1e-5)
    assert_same_declarations(ours, theirs)


def test_log_det_against_autograd() -> None:
    flow = neural_autoregressive(3, hidden_dims=[10], width=4).double()
    assert_log_det_matches_autograd(flow, torch.randn(3, 3, dtype=torch.float64), atol=1e-7)


def test_conditional_matches_pyro() -> None:
    ours = ConditionalNeuralAutoregressive(ConditionalAutoRegressiveNN(3, 2, [10], param_dims=[4] * 3, permutation=PERMUTATION), hidden_units=4)
    theirs = pyro_transforms.ConditionalNeuralAutoregressive(
        pyro_nn.ConditionalAutoRegressiveNN(3, 2, [10], param_dims=[4] * 3, permutation=PERMUTATION), hidden_units=4
    )
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(2)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(4, 3), invertible=False, atol=1e-5)
    assert conditional_neural_autoregressive(3, 2).condition(context)(torch.zeros(3)).shape == (3,)


def test_bad_activation() -> None:
    with pytest.raises(ValueError, match='NeuralAutoregressive: invalid activation function "relu"'):
        neural_autoregressive(2, activation="relu")

"""Tests for ember.distributions.transforms.matrix_exponential."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions.transforms import (
    ConditionalMatrixExponential,
    MatrixExponential,
    conditional_matrix_exponential,
    matrix_exponential,
)
from ember.nn import DenseNN
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_nn,
    pyro_transforms,
)


def test_matches_pyro_and_torchs_matrix_exponential() -> None:
    ours, theirs = MatrixExponential(3), pyro_transforms.MatrixExponential(3)
    x = torch.randn(5, 3)
    assert_pyro_parity(ours, theirs, x, atol=1e-5)
    assert_same_declarations(ours, theirs)
    weights: Any = ours.weights
    expected = x @ torch.linalg.matrix_exp(weights.detach()).T
    assert torch.allclose(ours(x), expected, atol=1e-4)


def test_round_trip_and_log_det_against_autograd() -> None:
    flow = matrix_exponential(3, iterations=20).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    assert_round_trip(flow, x, atol=1e-9)
    assert_log_det_matches_autograd(flow, x, atol=1e-9)


def test_conditional_matches_pyro() -> None:
    ours = ConditionalMatrixExponential(2, DenseNN(3, [6], param_dims=[4]))
    theirs = pyro_transforms.ConditionalMatrixExponential(2, pyro_nn.DenseNN(3, [6], param_dims=[4]))
    ours.load_state_dict(theirs.state_dict())
    context = torch.randn(3)
    assert_pyro_parity(ours.condition(context), theirs.condition(context), torch.randn(4, 2), atol=1e-5)
    assert conditional_matrix_exponential(2, 3).condition(context)(torch.zeros(2)).shape == (2,)


def test_unimplemented_normalizations() -> None:
    with pytest.raises(NotImplementedError, match="Normalization is currently not implemented"):
        MatrixExponential(2, normalization="spectral")
    with pytest.raises(ValueError, match="Unknown normalization method: other"):
        MatrixExponential(2, normalization="other")

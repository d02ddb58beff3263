"""Tests for ember.distributions.transforms.block_autoregressive."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import BlockAutoregressive, block_autoregressive
from tests.distributions.transforms._checks import (
    assert_cached_inverse_is_identity,
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_same_declarations,
    jacobian_of,
    pyro_transforms,
)


@pytest.mark.parametrize("residual", [None, "normal", "gated"])
@pytest.mark.parametrize("activation", ["tanh", "ELU", "LeakyReLU", "sigmoid"])
def test_matches_pyro(activation: str, residual: str | None) -> None:
    ours = BlockAutoregressive(3, hidden_factors=[2, 3], activation=activation, residual=residual)
    theirs = pyro_transforms.BlockAutoregressive(3, hidden_factors=[2, 3], activation=activation, residual=residual)
    x = torch.randn(4, 3)
    assert_pyro_parity(ours, theirs, x, invertible=False, atol=1e-5)
    assert_same_declarations(ours, theirs)


@pytest.mark.parametrize("residual", [None, "gated"])
def test_log_det_against_autograd_and_autoregressive_jacobian(residual: str | None) -> None:
    flow = block_autoregressive(3, hidden_factors=[2], residual=residual).double()
    x = torch.randn(3, 3, dtype=torch.float64)
    assert_log_det_matches_autograd(flow, x, atol=1e-7)
    jac = jacobian_of(lambda v: flow(v), x[0])
    assert torch.allclose(jac.triu(1), torch.zeros(3, 3, dtype=torch.float64))
    assert_cached_inverse_is_identity(flow, x)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"BlockAutoregressive: hidden factors, \[0\], must all be >= 1"):
        BlockAutoregressive(2, hidden_factors=[0])
    with pytest.raises(ValueError, match='BlockAutoregressive: invalid value other for keyword argument "residual"'):
        BlockAutoregressive(2, residual="other")
    with pytest.raises(ValueError, match='BlockAutoregressive: invalid activation function "relu"'):
        BlockAutoregressive(2, activation="relu")

"""Tests for ember.ops.tensor_utils, against pyro-ppl's pyro.ops.tensor_utils and exact answers."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

from ember.ops.tensor_utils import safe_normalize
from ember.ops import tensor_utils

pyro_tensor_utils: Any = importlib.import_module("pyro.ops.tensor_utils")


def test_safe_normalize_matches_pyro_including_zero_vectors() -> None:
    x = torch.randn(5, 3)
    x[2] = 0
    assert torch.equal(safe_normalize(x), pyro_tensor_utils.safe_normalize(x))
    assert torch.equal(safe_normalize(x)[2], torch.tensor([1.0, 0.0, 0.0]))


def test_safe_normalize_other_norms_and_gradients() -> None:
    x = torch.tensor([3.0, -4.0], requires_grad=True)
    assert torch.allclose(safe_normalize(x, p=1), torch.tensor([3.0, -4.0]) / 7)
    (grad,) = torch.autograd.grad(safe_normalize(x)[0], [x])
    assert torch.isfinite(grad).all()
    with pytest.raises(ValueError, match="p >= 0"):
        safe_normalize(x, p=-1)


def test_every_public_function_of_pyros_module_exists() -> None:
    public = {n for n in dir(pyro_tensor_utils) if not n.startswith("_") and n not in ("math", "torch", "settings")}
    assert sorted(public - set(tensor_utils.__all__)) == []


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8])
def test_dct_matches_pyro_the_dct_matrix_and_inverts(size: int) -> None:
    x = torch.randn(3, size, dtype=torch.float64)
    n = torch.arange(size, dtype=torch.float64)
    matrix = torch.cos(math.pi / size * (n + 0.5) * n[:, None]) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    assert torch.allclose(tensor_utils.dct(x), x @ matrix.T)
    assert torch.allclose(tensor_utils.dct(x), pyro_tensor_utils.dct(x))
    assert torch.allclose(tensor_utils.idct(x), pyro_tensor_utils.idct(x))
    assert torch.allclose(tensor_utils.idct(tensor_utils.dct(x)), x)


def test_dct_along_another_dim() -> None:
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert torch.allclose(tensor_utils.dct(x, dim=1), pyro_tensor_utils.dct(x, dim=1))
    assert torch.allclose(tensor_utils.idct(x, dim=-2), pyro_tensor_utils.idct(x, dim=-2))


@pytest.mark.parametrize("size", [1, 2, 5, 8, 9])
def test_haar_matches_pyro_is_orthonormal_and_inverts(size: int) -> None:
    x = torch.randn(2, size, dtype=torch.float64)
    y = tensor_utils.haar_transform(x)
    assert torch.allclose(y, pyro_tensor_utils.haar_transform(x))
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1))
    assert torch.allclose(tensor_utils.inverse_haar_transform(y), x)


def test_block_diagonal_round_trip_and_pyro() -> None:
    blocks = torch.randn(2, 3, 2, 4)
    full = tensor_utils.block_diag_embed(blocks)
    assert torch.equal(full, pyro_tensor_utils.block_diag_embed(blocks))
    assert torch.equal(tensor_utils.block_diagonal(full, 3), blocks)
    assert full.shape == (2, 6, 12) and full[0, 0, 4:].abs().sum() == 0


def test_periodic_helpers_match_their_definitions() -> None:
    x = torch.randn(7, 2)
    repeated = tensor_utils.periodic_repeat(x[:3], 7, 0)
    assert torch.equal(repeated, torch.cat([x[:3], x[:3], x[:1]]))
    summed = tensor_utils.periodic_cumsum(x, 3, 0)
    for t in range(7):
        expected = x[t] + (summed[t - 3] if t >= 3 else 0)
        assert torch.allclose(summed[t], expected)
    assert torch.allclose(tensor_utils.periodic_features(30, 12.0, 3.0), pyro_tensor_utils.periodic_features(30, 12.0, 3.0))
    assert tensor_utils.periodic_features(10).shape == (10, 8)


def test_next_fast_len_and_convolve() -> None:
    assert [tensor_utils.next_fast_len(n) for n in (1, 7, 11, 13, 17, 97)] == [1, 8, 12, 15, 18, 100]
    signal, kernel = torch.randn(2, 9, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    full = torch.stack([torch.tensor([sum(s[i] * kernel[k - i] for i in range(9) if 0 <= k - i < 4) for k in range(12)]) for s in signal])
    assert torch.allclose(tensor_utils.convolve(signal, kernel), full.double())
    for mode in ("valid", "same"):
        assert torch.allclose(tensor_utils.convolve(signal, kernel, mode), pyro_tensor_utils.convolve(signal, kernel, mode))
    with pytest.raises(ValueError, match="Unknown mode: circular"):
        tensor_utils.convolve(signal, kernel, "circular")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_repeated_matmul_stacks_powers(n: int) -> None:
    m = torch.randn(2, 3, 3, dtype=torch.float64) / 2
    expected = torch.stack([torch.linalg.matrix_power(m, k) for k in range(1, n + 1)])
    assert torch.allclose(tensor_utils.repeated_matmul(m, n), expected)


def test_linear_algebra_shortcuts() -> None:
    a = torch.randn(4, 4, dtype=torch.float64)
    precision = a @ a.T + torch.eye(4, dtype=torch.float64)
    scale_tril = tensor_utils.precision_to_scale_tril(precision)
    assert torch.allclose(scale_tril, scale_tril.tril()) and torch.allclose(scale_tril @ scale_tril.T, torch.linalg.inv(precision))
    factor = tensor_utils.safe_cholesky(precision)
    assert torch.allclose(factor @ factor.T, precision)
    rhs = torch.randn(4, 2, dtype=torch.float64)
    assert torch.allclose(precision @ tensor_utils.cholesky_solve(rhs, factor), rhs)
    assert torch.allclose(factor @ tensor_utils.triangular_solve(rhs, factor), rhs)
    assert torch.allclose(factor.T @ tensor_utils.triangular_solve(rhs, factor, transpose=True), rhs)
    assert torch.allclose(tensor_utils.matvecmul(a, rhs[:, 0]), a @ rhs[:, 0])
    scalar = torch.full((3, 1, 1), 2.0)
    assert torch.equal(tensor_utils.matmul(scalar, scalar), scalar * 2)
    assert torch.equal(tensor_utils.cholesky_solve(torch.ones(3, 1, 1), scalar), torch.full((3, 1, 1), 0.25))


def test_safe_normalize_maps_zero_to_the_first_axis() -> None:
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.equal(tensor_utils.safe_normalize(x), torch.tensor([[0.6, 0.8], [1.0, 0.0]]))
    assert torch.allclose(tensor_utils.safe_normalize(x, p=1), pyro_tensor_utils.safe_normalize(x, p=1))


def test_broadcast_tensors_without_dim() -> None:
    a, b = torch.zeros(2, 1, 3), torch.zeros(4, 5)
    out = tensor_utils.broadcast_tensors_without_dim([a, b], -1)
    assert [t.shape for t in out] == [(2, 4, 3), (2, 4, 5)]
    with pytest.raises(ValueError, match="Dimension dim must be negative for different dimension tensors"):
        tensor_utils.broadcast_tensors_without_dim([a, b], 1)


def test_as_complex_copies_when_strides_forbid_a_view() -> None:
    x = torch.randn(3, 4)[:, :2]  # row stride 4 is even, so this views
    assert torch.equal(torch.view_as_real(tensor_utils.as_complex(x)), x)
    odd = torch.randn(3, 3)[:, :2]
    assert torch.equal(torch.view_as_real(tensor_utils.as_complex(odd)), odd)

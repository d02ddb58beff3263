"""Closed-form small-matrix linear algebra against torch.linalg and pyro.ops.linalg."""

from __future__ import annotations

from typing import Any

import pyro.ops.linalg as _pyro_linalg
import pytest
import torch

from ember.ops.linalg import determinant_3d, eig_3d, inv3d, null_space, rinverse

pyro_linalg: Any = _pyro_linalg  # pyro-ppl is untyped: the oracle's calls are unchecked


def _spd(batch: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch + (n, n), generator=generator, dtype=torch.float64)
    return a @ a.transpose(-1, -2) + n * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("sym", [False, True])
def test_rinverse_inverts_batches_like_torch_and_pyro(n: int, sym: bool) -> None:
    M = _spd((5, 2), n, n)
    if not sym:
        M = M + 0.3 * torch.randn(M.shape, generator=torch.Generator().manual_seed(1), dtype=M.dtype)
    expected = torch.linalg.inv(M)
    assert torch.allclose(rinverse(M, sym=sym), expected, atol=1e-10)
    assert torch.allclose(rinverse(M, sym=sym), pyro_linalg.rinverse(M, sym=sym), atol=1e-10)
    with pytest.raises(ValueError, match="square"):
        rinverse(torch.zeros(2, 3))


def test_inv3d_and_determinant_3d_match_torch() -> None:
    M = torch.randn(7, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(determinant_3d(M), torch.linalg.det(M), atol=1e-10)
    assert torch.allclose(inv3d(M), torch.linalg.inv(M), atol=1e-8)


def test_eig_3d_gives_sorted_eigenvalues_of_symmetric_matrices() -> None:
    H = _spd((6,), 3, 3) - 4 * torch.eye(3, dtype=torch.float64)
    smallest, middle, largest = eig_3d(H)
    expected = torch.linalg.eigvalsh(H)
    assert torch.allclose(torch.stack([smallest, middle, largest], -1), expected, atol=1e-8)
    for ours, theirs in zip(eig_3d(H.float()), pyro_linalg.eig_3d(H.float())):
        assert torch.allclose(ours, theirs, atol=1e-4)
    # Repeated eigenvalues sit at the edge of acos's domain.
    twos = eig_3d(2 * torch.eye(3).expand(2, 3, 3))
    assert all(torch.allclose(e, torch.full((2,), 2.0)) for e in twos)


@pytest.mark.parametrize(("shape", "rank"), [((2, 4), 2), ((3, 3), 2), ((1, 5), 1), ((4, 2), 2)])
def test_null_space_is_an_orthonormal_basis_of_the_kernel(shape: tuple[int, int], rank: int) -> None:
    generator = torch.Generator().manual_seed(3)
    m, n = shape
    A = torch.randn(m, rank, generator=generator, dtype=torch.float64) @ torch.randn(rank, n, generator=generator, dtype=torch.float64)
    Q = null_space(A)
    assert Q.shape == (n, n - rank)
    assert torch.allclose(A @ Q, torch.zeros(m, n - rank, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(Q.t() @ Q, torch.eye(n - rank, dtype=torch.float64), atol=1e-10)
    with pytest.raises(ValueError, match="expected a matrix"):
        null_space(torch.zeros(2, 2, 2))

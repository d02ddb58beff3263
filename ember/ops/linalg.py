"""Small dense linear algebra on batches of tiny matrices, in closed form where that is faster."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["determinant_3d", "eig_3d", "ignore_torch_deprecation_warnings", "inv3d", "null_space", "rinverse"]


@contextmanager
def ignore_torch_deprecation_warnings() -> Iterator[None]:
    """Silence torch's deprecation warning for ``torch.triangular_solve`` inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.triangular_solve is deprecated")
        yield


def rinverse(M: torch.Tensor, sym: bool = False) -> torch.Tensor:
    """Invert the rightmost two dims of ``M`` (batched), in closed form for sizes 1 to 3.

    :param M: a batch of square matrices.
    :param sym: whether the matrices are symmetric (lets the 3x3 formula skip work).

    >>> M = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    >>> torch.allclose(rinverse(M) @ M, torch.eye(2))
    True
    """
    if M.shape[-1] != M.shape[-2]:
        raise ValueError(f"rinverse: expected square matrices, got shape {tuple(M.shape)}")
    n = M.shape[-1]
    if n == 1:
        return 1.0 / M
    if n == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        adjugate = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2)
        return adjugate / (a * d - b * c)[..., None, None]
    if n == 3:
        return inv3d(M, sym=sym)
    inverse: torch.Tensor = torch.linalg.inv(M)
    return inverse


def determinant_3d(H: torch.Tensor) -> torch.Tensor:
    """The determinants of a batch of 3x3 matrices, by cofactor expansion along the first row.

    >>> float(determinant_3d(torch.diag(torch.tensor([1.0, 2.0, 3.0]))))
    6.0
    """
    return (
        H[..., 0, 0] * (H[..., 1, 1] * H[..., 2, 2] - H[..., 1, 2] * H[..., 2, 1])
        - H[..., 0, 1] * (H[..., 1, 0] * H[..., 2, 2] - H[..., 1, 2] * H[..., 2, 0])
        + H[..., 0, 2] * (H[..., 1, 0] * H[..., 2, 1] - H[..., 1, 1] * H[..., 2, 0])
    )


def inv3d(H: torch.Tensor, sym: bool = False) -> torch.Tensor:
    """The inverses of a batch of 3x3 matrices, as adjugate over determinant.

    :param H: a batch of 3x3 matrices.
    :param sym: whether ``H`` is symmetric (the lower cofactors then copy the upper ones).
    """

    def cofactor(i: int, j: int) -> torch.Tensor:
        rows = [r for r in range(3) if r != i]
        cols = [c for c in range(3) if c != j]
        minor = H[..., rows[0], cols[0]] * H[..., rows[1], cols[1]] - H[..., rows[0], cols[1]] * H[..., rows[1], cols[0]]
        return minor if (i + j) % 2 == 0 else -minor

    # The inverse is the transposed cofactor matrix divided by the determinant.
    entries = [[cofactor(j, i) if (not sym or i <= j) else None for j in range(3)] for i in range(3)]
    rows = []
    for i in range(3):
        row = [entries[i][j] if entries[i][j] is not None else entries[j][i] for j in range(3)]
        rows.append(torch.stack(row, -1))  # type: ignore[arg-type]  # every None was filled from the transpose
    adjugate = torch.stack(rows, -2)
    return adjugate / determinant_3d(H)[..., None, None]


def eig_3d(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The eigenvalues of a batch of symmetric 3x3 matrices, smallest first, in closed form.

    Uses the trigonometric solution of the characteristic cubic (Smith, 1961).

    :param H: a batch of symmetric 3x3 matrices.
    :returns: ``(smallest, middle, largest)``.

    >>> [round(float(e), 4) for e in eig_3d(torch.diag(torch.tensor([3.0, 1.0, 2.0])))]
    [1.0, 2.0, 3.0]
    """
    off = H[..., 0, 1] ** 2 + H[..., 0, 2] ** 2 + H[..., 1, 2] ** 2
    q = (H[..., 0, 0] + H[..., 1, 1] + H[..., 2, 2]) / 3
    p2 = (H[..., 0, 0] - q) ** 2 + (H[..., 1, 1] - q) ** 2 + (H[..., 2, 2] - q) ** 2 + 2 * off
    # A multiple of the identity has p = 0; any finite p then gives B = 0 and the right answer.
    p = torch.sqrt(p2 / 6).clamp(min=torch.finfo(H.dtype).tiny)
    B = (H - q[..., None, None] * torch.eye(3, dtype=H.dtype, device=H.device)) / p[..., None, None]
    r = determinant_3d(B) / 2
    # Round-off can push r just outside [-1, 1]; the limits give phi = pi/3 and 0.
    phi = torch.where(r <= -1 + 1e-6, math.pi / 3, torch.where(r >= 1 - 1e-6, 0.0, r.clamp(-1, 1).acos() / 3))
    largest = q + 2 * p * torch.cos(phi)
    smallest = q + 2 * p * torch.cos(phi + 2 * math.pi / 3)
    middle = 3 * q - largest - smallest
    return smallest, middle, largest


def null_space(A: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
    """An orthonormal basis of the null space of the matrix ``A``, as columns.

    Singular values below ``rcond * largest`` count as zero (``rcond`` defaults to machine
    epsilon times the larger dim, as in ``scipy.linalg.null_space``).

    :param A: an ``(m, n)`` matrix.
    :param rcond: the relative threshold for zero singular values.
    :returns: an ``(n, k)`` matrix ``Q`` with ``A @ Q ~ 0`` and ``Q.T @ Q = I``.

    >>> Q = null_space(torch.tensor([[1.0, 1.0]]))
    >>> Q.shape, bool(torch.allclose(torch.tensor([[1.0, 1.0]]) @ Q, torch.zeros(1, 1), atol=1e-6))
    (torch.Size([2, 1]), True)
    """
    if A.dim() != 2:
        raise ValueError(f"null_space: expected a matrix, got shape {tuple(A.shape)}")
    m, n = A.shape
    _, s, vh = torch.linalg.svd(A, full_matrices=True)
    if rcond is None:
        rcond = torch.finfo(A.dtype).eps * max(m, n)
    tol = float(s.max()) * rcond if s.numel() else 0.0
    rank = int((s > tol).sum())
    basis: torch.Tensor = vh[rank:].transpose(-1, -2).conj()
    return basis

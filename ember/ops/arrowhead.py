"""Symmetric and upper-triangular *arrowhead* matrices: a dense head of ``k`` rows, diagonal below.

A symmetric arrowhead ``[[A, B], [B^T, diag(d)]]`` is stored as ``top = [A, B]`` (``k x N``) and
``bottom_diag = d``; an upper-triangular one as its first ``k`` rows and the diagonal below.
``ArrowheadMassMatrix`` uses these to keep a mass matrix dense among a few coordinates only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["SymmArrowhead", "TriuArrowhead", "sqrt", "triu_gram", "triu_inverse", "triu_matvecmul"]


class SymmArrowhead(NamedTuple):
    """A symmetric arrowhead matrix: its first rows ``top`` and the diagonal ``bottom_diag``."""

    top: torch.Tensor
    bottom_diag: torch.Tensor


class TriuArrowhead(NamedTuple):
    """An upper-triangular arrowhead matrix: its first rows ``top`` and the diagonal below."""

    top: torch.Tensor
    bottom_diag: torch.Tensor


def sqrt(x: SymmArrowhead) -> TriuArrowhead:
    """The upper-triangular ``U`` with ``U @ U.T == x`` (a "reversed" Cholesky factor).

    If the Schur complement of the diagonal block is not positive definite, the off-diagonal
    block is halved (up to six times) until it is.

    :raises RuntimeError: if no halving helps.

    >>> x = SymmArrowhead(torch.tensor([[2.0, 1.0]]), torch.tensor([1.0]))
    >>> u = sqrt(x)
    >>> dense = torch.cat([u.top, torch.tensor([[0.0, 1.0]])])
    >>> dense @ dense.T
    tensor([[2., 1.],
            [1., 1.]])
    """
    k = x.top.shape[0]
    d_sqrt = x.bottom_diag.sqrt()
    if k == 0:
        return TriuArrowhead(x.top, d_sqrt)
    head, cross = x.top[:, :k], x.top[:, k:]
    for _ in range(6):
        cross_scaled = cross / d_sqrt
        schur = head - cross_scaled @ cross_scaled.T
        # Cholesky of the flipped matrix, flipped back, is upper triangular with U U^T = schur.
        factor, info = torch.linalg.cholesky_ex(torch.flip(schur, (-2, -1)))
        if int(info) == 0:
            return TriuArrowhead(torch.cat([torch.flip(factor, (-2, -1)), cross_scaled], -1), d_sqrt)
        cross = cross / 2
    raise RuntimeError("Singular schur complement in computing Cholesky of the input arrowhead matrix")


def triu_inverse(x: TriuArrowhead) -> TriuArrowhead:
    """The inverse of an upper-triangular arrowhead matrix (itself one).

    >>> u = TriuArrowhead(torch.tensor([[2.0, 1.0]]), torch.tensor([4.0]))
    >>> triu_inverse(u)
    TriuArrowhead(top=tensor([[ 0.5000, -0.1250]]), bottom_diag=tensor([0.2500]))
    """
    k = x.top.shape[0]
    d_inv = x.bottom_diag.reciprocal()
    if k == 0:
        return TriuArrowhead(x.top, d_inv)
    head, cross = x.top[:, :k], x.top[:, k:]
    eye = torch.eye(k, dtype=head.dtype, device=head.device)
    head_inv = torch.linalg.solve_triangular(head, eye, upper=True)
    return TriuArrowhead(torch.cat([head_inv, -(head_inv @ cross) * d_inv], -1), d_inv)


def triu_matvecmul(x: TriuArrowhead, y: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``x @ y`` (or ``x.T @ y``) for an upper-triangular arrowhead ``x`` and a vector ``y``.

    >>> u = TriuArrowhead(torch.tensor([[2.0, 1.0]]), torch.tensor([4.0]))
    >>> triu_matvecmul(u, torch.tensor([1.0, 1.0])), triu_matvecmul(u, torch.tensor([1.0, 1.0]), True)
    (tensor([3., 4.]), tensor([2., 5.]))
    """
    k = x.top.shape[0]
    if transpose:
        head_part = x.top.T @ y[:k]
        return torch.cat([head_part[:k], head_part[k:] + x.bottom_diag * y[k:]])
    return torch.cat([x.top @ y, x.bottom_diag * y[k:]])


def triu_gram(x: TriuArrowhead) -> torch.Tensor:
    """The dense Gram matrix ``x.T @ x`` (a vector of squares when there is no head).

    >>> triu_gram(TriuArrowhead(torch.tensor([[2.0, 1.0]]), torch.tensor([4.0])))
    tensor([[ 4.,  2.],
            [ 2., 17.]])
    """
    k = x.top.shape[0]
    if k == 0:
        return x.bottom_diag.pow(2)
    head, cross = x.top[:, :k], x.top[:, k:]
    top = head.T @ x.top
    bottom = torch.cat([top[:, k:].T, cross.T @ cross + torch.diag(x.bottom_diag.pow(2))], -1)
    return torch.cat([top, bottom], 0)

"""Small linear-algebra helpers shared by the Gaussian algebras (private)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

_RELATIVE_JITTER = 4.0  # in units of the dtype's machine epsilon


def broadcast(*shapes: Sequence[int]) -> torch.Size:
    """The broadcast of ``shapes`` (typed :func:`torch.broadcast_shapes`)."""
    result: torch.Size = torch.broadcast_shapes(*shapes)  # type: ignore[no-untyped-call]  # torch: unannotated
    return result


def cholesky(x: torch.Tensor) -> torch.Tensor:
    """Cholesky factor with a jitter relative to each row's scale, so PSD round-off passes."""
    eps = torch.finfo(x.dtype).eps
    if x.size(-1) == 1:
        return x.clamp(min=torch.finfo(x.dtype).tiny).sqrt()
    jitter = _RELATIVE_JITTER * eps * x.detach().abs().amax(-1)
    factor: torch.Tensor = torch.linalg.cholesky(x + torch.diag_embed(jitter))
    return factor


_SUBSTITUTION_MAX = 3  # up to this size, vectorized substitution beats batched LAPACK calls


def _forward_substitution(lower: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    rows: list[torch.Tensor] = []
    for i in range(lower.size(-1)):
        acc = rhs[..., i, :]
        for j in range(i):
            acc = acc - lower[..., i, j, None] * rows[j]
        rows.append(acc / lower[..., i, i, None])
    return torch.stack(rows, -2)


def _backward_substitution(lower: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    n = lower.size(-1)
    rows: list[torch.Tensor] = [rhs[..., 0, :]] * n
    for i in reversed(range(n)):
        acc = rhs[..., i, :]
        for j in range(i + 1, n):
            acc = acc - lower[..., j, i, None] * rows[j]
        rows[i] = acc / lower[..., i, i, None]
    return torch.stack(rows, -2)


def solve_lower(lower: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``lower^-1 @ rhs`` for a lower-triangular ``lower`` (broadcasting batch dims)."""
    n = lower.size(-1)
    if n == 1:
        return rhs / lower
    if n <= _SUBSTITUTION_MAX:
        # About twice as fast as batched solve_triangular on CPU for many 2x2/3x3 systems.
        return _forward_substitution(lower, rhs)
    batch = broadcast(lower.shape[:-2], rhs.shape[:-2])
    result: torch.Tensor = torch.linalg.solve_triangular(
        lower.expand(batch + lower.shape[-2:]), rhs.expand(batch + rhs.shape[-2:]), upper=False
    )
    return result


def solve_lower_transposed(lower: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``lower^-T @ rhs`` for a lower-triangular ``lower``."""
    n = lower.size(-1)
    if n == 1:
        return rhs / lower
    if n <= _SUBSTITUTION_MAX:
        return _backward_substitution(lower, rhs)
    batch = broadcast(lower.shape[:-2], rhs.shape[:-2])
    result: torch.Tensor = torch.linalg.solve_triangular(
        lower.mT.expand(batch + lower.shape[-2:]), rhs.expand(batch + rhs.shape[-2:]), upper=True
    )
    return result


def cholesky_solve(rhs: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``(factor @ factor.T)^-1 @ rhs``."""
    return solve_lower_transposed(factor, solve_lower(factor, rhs))


def matvec(matrix: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """``matrix @ vector`` over the last dimensions, broadcasting batch dims."""
    return (matrix @ vector.unsqueeze(-1)).squeeze(-1)


def precision_to_scale_tril(precision: torch.Tensor) -> torch.Tensor:
    """The lower Cholesky factor of ``precision^-1``, without forming the inverse."""
    # Reversing rows and columns turns the upper factor of the inverse into a lower one.
    flipped = torch.linalg.cholesky(precision.flip(-2, -1))
    inverse_factor = flipped.flip(-2, -1).mT
    eye = torch.eye(precision.size(-1), dtype=precision.dtype, device=precision.device)
    result: torch.Tensor = torch.linalg.solve_triangular(inverse_factor, eye, upper=False)
    return result

"""Tensor helpers at Pyro's ``pyro.ops.tensor_utils`` path.

This module holds only :func:`safe_normalize`, which the directional distributions need.
"""

from __future__ import annotations

import torch

__all__ = ["safe_normalize"]


def safe_normalize(x: torch.Tensor, *, p: float = 2) -> torch.Tensor:
    """Project vectors along the last dimension onto the unit ``p``-norm sphere.

    The zero vector, where the projection is undefined, maps to ``[1, 0, ..., 0]``.

    :param x: a tensor whose last dimension holds the vectors.
    :param p: the norm's exponent (non-negative), 2 for the Euclidean norm.
    :raises ValueError: if ``p`` is negative.

    >>> safe_normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [1.0000, 0.0000]])
    """
    if p < 0:
        raise ValueError(f"safe_normalize expects p >= 0, got p={p}")
    norm = torch.linalg.vector_norm(x, ord=p, dim=-1, keepdim=True)
    y = x / norm.clamp(min=torch.finfo(x.dtype).tiny)
    # The fix-up is written through .data so that gradients at zero stay those of x / tiny.
    zero = y.data.eq(0).all(dim=-1)
    y.data[..., 0][zero] = 1
    result: torch.Tensor = y
    return result

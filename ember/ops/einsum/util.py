"""Pieces shared by the einsum backends: the symbol alphabet and tensordot built from einsum."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["EINSUM_SYMBOLS_BASE", "Tensordot"]

#: The symbols ``torch.einsum`` accepts, in the order fresh names are handed out.
EINSUM_SYMBOLS_BASE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

_Axes = int | tuple[int | Sequence[int], int | Sequence[int]] | Sequence[Sequence[int]]


class Tensordot:
    """A ``tensordot(x, y, axes)`` that writes the contraction as an equation for ``einsum``.

    opt_einsum calls a backend's ``tensordot`` for pairwise contractions; semiring backends
    only define ``einsum``, and this turns one into the other. The free dims of ``x`` come
    first in the result, then those of ``y``, as ``numpy.tensordot`` orders them.

    :param einsum: the backend's ``einsum(equation, *operands)``.

    >>> tensordot = Tensordot(lambda eq, *xs: torch.einsum(eq, *xs))
    >>> tensordot(torch.ones(2, 3), torch.ones(3, 4), axes=1).shape
    torch.Size([2, 4])
    """

    def __init__(self, einsum: Callable[..., torch.Tensor]) -> None:
        self.einsum = einsum

    def __call__(self, x: torch.Tensor, y: torch.Tensor, axes: _Axes = 2) -> torch.Tensor:
        if isinstance(axes, int):
            x_axes: list[int] = list(range(x.dim() - axes, x.dim()))
            y_axes: list[int] = list(range(axes))
        else:
            first, second = axes
            x_axes = [first] if isinstance(first, int) else list(first)
            y_axes = [second] if isinstance(second, int) else list(second)
        x_axes = [a % x.dim() for a in x_axes]
        y_axes = [a % y.dim() for a in y_axes]
        fresh = iter(EINSUM_SYMBOLS_BASE)
        x_names = [""] * x.dim()
        y_names = [""] * y.dim()
        for i, j in zip(x_axes, y_axes):
            x_names[i] = y_names[j] = next(fresh)
        free = []
        for names in (x_names, y_names):
            for k, name in enumerate(names):
                if not name:
                    names[k] = next(fresh)
                    free.append(names[k])
        return self.einsum(f"{''.join(x_names)},{''.join(y_names)}->{''.join(free)}", x, y)

"""The shared shape of transforms that act on the dims right of a (negative) ``dim``."""

from __future__ import annotations

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints


class _DimTransform(Transform):
    """A transform of every dim from ``dim`` rightwards, with identity shapes.

    Sets ``domain`` and ``codomain`` to reals over ``-dim`` event dims (Pyro computes them
    from ``dim``, so ``event_dim == -dim``).
    """

    def __init__(self, dim: int, cache_size: int) -> None:
        super().__init__(cache_size=cache_size)
        self.dim = dim
        events = constraints.independent(constraints.real, -dim)  # type: ignore[no-untyped-call]  # torch: unannotated
        self.domain = events
        self.codomain = events

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        if len(shape) < self.event_dim:
            raise ValueError(f"{type(self).__name__}: Too few dimensions on input, shape {tuple(shape)} with dim={self.dim}")
        return shape

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return self.forward_shape(shape)


def _check_negative_dim(name: str, dim: int, error: type[Exception] = ValueError) -> None:
    """Reject a nonnegative ``dim`` with Pyro's error type for the transform (``AssertionError`` for some)."""
    if not isinstance(dim, int) or dim >= 0:
        raise error(f"{name}: 'dim' keyword argument must be negative; dim must be a negative int, got {dim!r}")

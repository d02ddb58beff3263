"""Projection of vectors onto the unit sphere."""

from __future__ import annotations

import numbers

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.ops.tensor_utils import safe_normalize

__all__ = ["Normalize"]


class Normalize(Transform):
    """Project a vector onto the unit ``p``-sphere (zero goes to ``[1, 0, ...]``); the inverse is the identity.

    :param p: the norm exponent.
    :param cache_size: 0 or 1, as for every torch transform.

    >>> Normalize()(torch.tensor([3.0, 4.0]))
    tensor([0.6000, 0.8000])
    """

    domain = constraints.real_vector
    codomain = constraints.sphere
    bijective = False

    def __init__(self, p: float = 2, cache_size: int = 0) -> None:
        assert isinstance(p, numbers.Number)
        assert p >= 0
        self.p = p
        super().__init__(cache_size=cache_size)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.p == getattr(other, "p", None)

    def __hash__(self) -> int:
        return hash((type(self), self.p))

    def with_cache(self, cache_size: int = 1) -> Normalize:
        if self._cache_size == cache_size:
            return self
        return Normalize(self.p, cache_size=cache_size)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return safe_normalize(x, p=self.p)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y

"""Permutation of the elements along one dim (to mix dims between autoregressive flows)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ember.distributions.transforms._dim import _check_negative_dim, _DimTransform

__all__ = ["Permute", "permute"]


class Permute(_DimTransform):
    """``y = x.index_select(dim, permutation)``; volume preserving.

    :param permutation: a permutation of ``range(size)`` as an int64 tensor.
    :param dim: the (negative) dim to permute; it and every dim to its right are event dims.
    :param cache_size: 0 or 1, as for every torch transform.
    :raises ValueError: unless ``dim`` is a negative int.

    >>> t = Permute(torch.tensor([2, 0, 1]))
    >>> t(torch.tensor([10.0, 20.0, 30.0])), t.inv(torch.tensor([30.0, 10.0, 20.0]))
    (tensor([30., 10., 20.]), tensor([10., 20., 30.]))
    """

    bijective = True
    volume_preserving = True

    def __init__(self, permutation: torch.Tensor, *, dim: int = -1, cache_size: int = 1) -> None:
        _check_negative_dim("Permute", dim)
        super().__init__(dim, cache_size)
        self.permutation = permutation
        self._inv_permutation: torch.Tensor | None = None

    @property
    def inv_permutation(self) -> torch.Tensor:
        """The inverse permutation."""
        if self._inv_permutation is None:
            self._inv_permutation = torch.argsort(self.permutation)
        return self._inv_permutation

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(self.dim, self.permutation)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y.index_select(self.dim, self.inv_permutation)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[: x.dim() - self.event_dim])

    def with_cache(self, cache_size: int = 1) -> Permute:
        if self._cache_size == cache_size:
            return self
        return Permute(self.permutation, dim=self.dim, cache_size=cache_size)


def permute(input_dim: int | Sequence[int], permutation: torch.Tensor | None = None, dim: int = -1) -> Permute:
    """A :class:`Permute` of the ``dim`` axis, by a random permutation unless one is given.

    :param input_dim: the size of the event, or the event shape when ``dim < -1``.
    :param permutation: the permutation (default: random).
    :param dim: the (negative) dim to permute.
    :raises ValueError: when an event shape's length is not ``-dim``.
    """
    if dim < -1 or not isinstance(input_dim, int):
        shape = [input_dim] if isinstance(input_dim, int) else list(input_dim)
        if len(shape) != -dim:
            raise ValueError(f"permute: event shape {shape} must have same length as event_dim {-dim}")
        input_dim = shape[dim]
    if permutation is None:
        permutation = torch.randperm(input_dim)
    return Permute(permutation, dim=dim)

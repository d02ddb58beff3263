"""The orthonormal discrete Haar wavelet transform as a bijection."""

from __future__ import annotations

import torch

from ember.distributions.transforms._dim import _check_negative_dim, _DimTransform
from ember.ops.tensor_utils import haar_transform, inverse_haar_transform

__all__ = ["HaarTransform"]


class HaarTransform(_DimTransform):
    """The orthonormal discrete Haar wavelet transform along ``dim``; Jacobian one.

    :param dim: the (negative) dim to transform; it and every dim to its right are event dims.
    :param flip: reverse the signal first, so the wavelet resolution is finest at its start.
    :param cache_size: 0 or 1, as for every torch transform.
    :raises AssertionError: unless ``dim`` is a negative int (as Pyro).

    >>> HaarTransform()(torch.tensor([1.0, 1.0]))
    tensor([1.4142, 0.0000])
    """

    bijective = True

    def __init__(self, dim: int = -1, flip: bool = False, cache_size: int = 0) -> None:
        _check_negative_dim("HaarTransform", dim, AssertionError)
        self.flip = flip
        super().__init__(dim, cache_size)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.dim, self.flip) == (other.dim, other.flip)

    def __hash__(self) -> int:
        return hash((type(self), self.dim, self.flip))

    def with_cache(self, cache_size: int = 1) -> HaarTransform:
        if self._cache_size == cache_size:
            return self
        return HaarTransform(self.dim, flip=self.flip, cache_size=cache_size)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(self.dim, -1)
        if self.flip:
            x = x.flip(-1)
        return haar_transform(x).transpose(self.dim, -1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = inverse_haar_transform(y.transpose(self.dim, -1))
        if self.flip:
            x = x.flip(-1)
        return x.transpose(self.dim, -1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[: self.dim])

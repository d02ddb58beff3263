"""The orthonormal discrete cosine transform as a bijection (for time-series reparameterization)."""

from __future__ import annotations

import torch

from ember.distributions.transforms._dim import _check_negative_dim, _DimTransform
from ember.ops.tensor_utils import dct, idct

__all__ = ["DiscreteCosineTransform"]


class DiscreteCosineTransform(_DimTransform):
    """The orthonormal discrete cosine transform of type II along ``dim``; Jacobian one.

    :param dim: the (negative) dim to transform; it and every dim to its right are event dims.
    :param smooth: multiply frequency ``k + 1/2`` by ``(k + 1/2) ** smooth``, rescaled to keep
        the Jacobian determinant one: 0 maps white noise to white noise, 1 maps Brownian
        noise to white noise, -1 violet noise, and so on.
    :param cache_size: 0 or 1, as for every torch transform.
    :raises AssertionError: unless ``dim`` is a negative int (as Pyro).

    >>> t = DiscreteCosineTransform()
    >>> x = torch.tensor([1.0, 1.0, 1.0, 1.0])
    >>> t(x).round(decimals=4) + 0.0
    tensor([2., 0., 0., 0.])
    >>> torch.allclose(t.inv(t(x)), x)
    True
    """

    bijective = True

    def __init__(self, dim: int = -1, smooth: float = 0.0, cache_size: int = 0) -> None:
        _check_negative_dim("DiscreteCosineTransform", dim, AssertionError)
        self.smooth = float(smooth)
        super().__init__(dim, cache_size)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.dim, self.smooth) == (other.dim, other.smooth)

    def __hash__(self) -> int:
        return hash((type(self), self.dim, self.smooth))

    def with_cache(self, cache_size: int = 1) -> DiscreteCosineTransform:
        if self._cache_size == cache_size:
            return self
        return DiscreteCosineTransform(self.dim, self.smooth, cache_size=cache_size)

    def _weight(self, y: torch.Tensor) -> torch.Tensor:
        size = y.size(-1)
        freq = torch.arange(size, dtype=y.dtype, device=y.device) + 0.5
        weight = freq.pow(self.smooth)
        return weight / weight.log().mean().exp()  # geometric mean one: |det J| = 1

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        y = dct(x.transpose(self.dim, -1))
        if self.smooth:
            y = y * self._weight(y)
        return y.transpose(self.dim, -1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = y.transpose(self.dim, -1)
        if self.smooth:
            y = y / self._weight(y)
        return idct(y).transpose(self.dim, -1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[: self.dim])

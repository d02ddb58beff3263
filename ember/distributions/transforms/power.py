"""The sign-preserving power map ``y = sign(x) |x|^p``."""

from __future__ import annotations

import torch
from torch.distributions import Distribution
from torch.distributions.transforms import Transform

from ember.distributions import constraints
from ember.distributions.util import broadcast_shape

__all__ = ["PositivePowerTransform"]


class PositivePowerTransform(Transform):
    """``y = sign(x) |x| ** exponent`` for a positive exponent: a bijection of the real line.

    :param exponent: the positive exponent (a tensor broadcasts against the input).
    :param cache_size: 0 or 1, as for every torch transform.
    :param validate_args: check that the exponent is positive (default: the distribution setting).
    :raises ValueError: when validating and some exponent is not positive.

    >>> PositivePowerTransform(2.0)(torch.tensor([-3.0, 2.0]))
    tensor([-9.,  4.])
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1

    def __init__(self, exponent: torch.Tensor | float, *, cache_size: int = 0, validate_args: bool | None = None) -> None:
        super().__init__(cache_size=cache_size)
        self.exponent = torch.as_tensor(float(exponent) if isinstance(exponent, int) else exponent)
        if validate_args is None:
            validate_args = bool(Distribution._validate_args)
        if validate_args and not bool(self.exponent.gt(0).all()):
            raise ValueError(f"PositivePowerTransform: expected exponent > 0 but got: {self.exponent}")

    def with_cache(self, cache_size: int = 1) -> PositivePowerTransform:
        if self._cache_size == cache_size:
            return self
        return PositivePowerTransform(self.exponent, cache_size=cache_size)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PositivePowerTransform) and bool(self.exponent.eq(other.exponent).all())

    def __hash__(self) -> int:
        return hash(type(self))

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs().pow(self.exponent) * x.sign()

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y.abs().pow(self.exponent.reciprocal()) * y.sign()

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.exponent.log() + (y / x).log()

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return torch.Size(broadcast_shape(shape, self.exponent.shape))

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return torch.Size(broadcast_shape(shape, self.exponent.shape))

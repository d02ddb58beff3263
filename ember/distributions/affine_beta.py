"""A Beta distribution moved and stretched to the interval ``[loc, loc + scale]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.transforms import AffineTransform
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch import Beta, TransformedDistribution
from ember.distributions.util import broadcast_shape

__all__ = ["AffineBeta"]


class AffineBeta(TransformedDistribution):
    """``loc + scale * X`` with ``X ~ Beta(concentration1, concentration0)``.

    Samples are clamped one ``eps * scale`` inside the interval, so that their log density
    stays finite.

    :param concentration1: the positive Beta ``alpha``.
    :param concentration0: the positive Beta ``beta``.
    :param loc: the lower end of the interval.
    :param scale: the positive length of the interval.
    :param validate_args: whether to validate the parameters and values.

    >>> d = AffineBeta(2.0, 2.0, torch.tensor(-1.0), torch.tensor(2.0))
    >>> d.mean, d.support.check(torch.tensor(0.9))
    (tensor(0.), tensor(True))
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "loc": constraints.real,
        "scale": constraints.positive,
    }

    def __init__(
        self,
        concentration1: torch.Tensor | float,
        concentration0: torch.Tensor | float,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        base_dist = Beta(concentration1, concentration0, validate_args=validate_args)
        transform = AffineTransform(loc=loc, scale=scale)
        super().__init__(base_dist, transform, validate_args=validate_args)

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The broadcast of the four parameter shapes; scalar events.

        :param arg_shapes: the parameter shapes.
        """
        return torch.Size(broadcast_shape(*arg_shapes.values())), torch.Size()

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the base distribution to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, AffineBeta, _instance)
        return super().expand(batch_shape, _instance=new)

    def _clamp(self, x: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(x.dtype).eps * self.scale
        return torch.min(torch.max(x, self.low + eps), self.high - eps)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draws inside the open interval, without gradients."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws inside the open interval."""
        x = self.base_dist.rsample(sample_shape)
        for transform in self.transforms:
            x = transform(x)
        return self._clamp(x)

    @constraints.dependent_property
    def support(self) -> constraints.Constraint:
        """The interval ``[loc, loc + scale]``."""
        return constraints.interval(self.low, self.high)  # type: ignore[no-untyped-call]  # torch: unannotated

    @property
    def concentration1(self) -> torch.Tensor:
        """The Beta ``alpha``."""
        base = self.base_dist
        assert isinstance(base, Beta)
        return base.concentration1

    @property
    def concentration0(self) -> torch.Tensor:
        """The Beta ``beta``."""
        base = self.base_dist
        assert isinstance(base, Beta)
        return base.concentration0

    @property
    def sample_size(self) -> torch.Tensor:
        """``concentration1 + concentration0``, the Beta's pseudo sample size."""
        return self.concentration1 + self.concentration0

    @property
    def loc(self) -> torch.Tensor:
        """The lower end of the interval."""
        transform = self.transforms[0]
        assert isinstance(transform, AffineTransform)
        return torch.as_tensor(transform.loc)

    @property
    def scale(self) -> torch.Tensor:
        """The length of the interval."""
        transform = self.transforms[0]
        assert isinstance(transform, AffineTransform)
        return torch.as_tensor(transform.scale)

    @property
    def low(self) -> torch.Tensor:
        """The lower end of the interval, ``loc``."""
        return self.loc

    @property
    def high(self) -> torch.Tensor:
        """The upper end of the interval, ``loc + scale``."""
        return self.loc + self.scale

    @property
    def mean(self) -> torch.Tensor:
        """``loc + scale * c1 / (c1 + c0)``."""
        base_mean: torch.Tensor = self.base_dist.mean
        return self.loc + self.scale * base_mean

    @property
    def variance(self) -> torch.Tensor:
        """``scale**2`` times the Beta variance."""
        base_variance: torch.Tensor = self.base_dist.variance
        return self.scale.pow(2) * base_variance

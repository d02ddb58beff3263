"""The soft Laplace distribution: a smooth, log-concave Laplace look-alike."""

from __future__ import annotations

import math
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._params import broadcast_parameters, expand_parameters
from ember.distributions.torch_distribution import TorchDistribution

__all__ = ["SoftLaplace"]


class SoftLaplace(TorchDistribution):
    """Density ``2 / (pi * scale * (exp(z) + exp(-z)))`` with ``z = (x - loc) / scale``.

    Laplace-like exponential tails with a smooth peak. The CDF is ``2/pi * atan(exp(z))``;
    ``rsample`` inverts it.

    :param loc: the location (mean and median).
    :param scale: the positive scale.
    :param validate_args: whether to validate the parameters and values.

    >>> SoftLaplace(0.0, 1.0).cdf(torch.tensor(0.0))
    tensor(0.5000)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.loc, self.scale = broadcast_parameters(type(self).__name__, loc=loc, scale=scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        return expand_parameters(self, SoftLaplace, _instance, batch_shape, ("loc", "scale"))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return math.log(2 / math.pi) - self.scale.log() - torch.logaddexp(z, -z)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws by the inverse CDF of uniforms."""
        u = self.loc.new_empty(self._extended_shape(sample_shape)).uniform_()
        return self.icdf(u)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """``2/pi * atan(exp((value - loc) / scale))``."""
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.loc) / self.scale).exp().atan() * (2 / math.pi)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """``loc + scale * log(tan(pi/2 * value))``."""
        return self.loc + self.scale * (value * (math.pi / 2)).tan().log()

    @property
    def mean(self) -> torch.Tensor:
        """The location ``loc``."""
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        """``(pi/2 * scale) ** 2``."""
        return (math.pi / 2 * self.scale) ** 2

"""The soft Laplace distribution: a smooth, log-concave Laplace look-alike."""

from __future__ import annotations

import math

import torch

from ember.distributions._loc_scale import _InverseCdfRsample, _RealLocScale

__all__ = ["SoftLaplace"]


class SoftLaplace(_InverseCdfRsample, _RealLocScale):
    """Density ``2 / (pi * scale * (exp(z) + exp(-z)))`` with ``z = (x - loc) / scale``.

    Laplace-like exponential tails with a smooth peak. The CDF is ``2/pi * atan(exp(z))``;
    ``rsample`` inverts it.

    :param loc: the location (mean and median).
    :param scale: the positive scale.
    :param validate_args: whether to validate the parameters and values.

    >>> SoftLaplace(0.0, 1.0).cdf(torch.tensor(0.0))
    tensor(0.5000)
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return math.log(2 / math.pi) - self.scale.log() - torch.logaddexp(z, -z)

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

"""The logistic distribution and its skewed (type I generalized) variant."""

from __future__ import annotations

import math

import torch
from torch.nn.functional import logsigmoid

from ember.distributions._loc_scale import _InverseCdfRsample, _RealLocScale, _RealLocScaleAsymmetry

__all__ = ["Logistic", "SkewLogistic"]


class Logistic(_InverseCdfRsample, _RealLocScale):
    """The logistic distribution: density ``sigmoid(z) sigmoid(-z) / scale``, ``z = (x - loc)/scale``.

    Sampled by inverting the CDF ``sigmoid(z)``, so ``rsample`` is reparameterized.

    :param loc: the location (mean and median).
    :param scale: the positive scale.
    :param validate_args: whether to validate the parameters and values.

    >>> Logistic(0.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-1.3863)
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return 2 * logsigmoid(z) - z - self.scale.log()

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """``sigmoid((value - loc) / scale)``."""
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.loc) / self.scale).sigmoid()

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """``loc + scale * logit(value)``."""
        return self.loc + self.scale * value.logit()

    @property
    def mean(self) -> torch.Tensor:
        """The location ``loc``."""
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        """``scale**2 * pi**2 / 3``."""
        return self.scale**2 * (math.pi**2 / 3)

    def entropy(self) -> torch.Tensor:
        """``log(scale) + 2``."""
        return self.scale.log() + 2


class SkewLogistic(_InverseCdfRsample, _RealLocScaleAsymmetry, family=True):
    """Type I generalized logistic distribution, skewed by ``asymmetry``.

    Its CDF is ``sigmoid(z) ** asymmetry`` with ``z = (x - loc) / scale``; ``asymmetry = 1``
    is the :class:`Logistic` distribution. Sampled by inverting the CDF.

    :param loc: the location.
    :param scale: the positive scale.
    :param asymmetry: the positive skew exponent.
    :param validate_args: whether to validate the parameters and values.

    >>> SkewLogistic(0.0, 1.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-1.3863)
    """

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        asymmetry: torch.Tensor | float = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._set_parameters(validate_args, loc=loc, scale=scale, asymmetry=asymmetry)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        a = self.asymmetry
        return a.log() - z + (a + 1) * logsigmoid(z) - self.scale.log()

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """``sigmoid((value - loc) / scale) ** asymmetry``."""
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.loc) / self.scale).sigmoid().pow(self.asymmetry)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """``loc + scale * logit(value ** (1 / asymmetry))``."""
        return self.loc + self.scale * value.pow(self.asymmetry.reciprocal()).logit()

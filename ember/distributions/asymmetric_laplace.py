"""Asymmetric Laplace distributions: the sharp one and a Gaussian-smoothed one."""

from __future__ import annotations

import math
import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._loc_scale import _RealLocScaleAsymmetry

__all__ = ["AsymmetricLaplace", "SoftAsymmetricLaplace"]


def _log_erfc(x: torch.Tensor) -> torch.Tensor:
    # erfc underflows for large x: there use the scaled erfcx(x) = exp(x^2) erfc(x).
    positive = x > 0
    safe_negative = torch.where(positive, 0.0, x)
    safe_positive = torch.where(positive, x, 0.0)
    return torch.where(
        positive,
        torch.special.erfcx(safe_positive).log() - safe_positive**2,
        torch.erfc(safe_negative).log(),
    )


class _SkewedLaplaceBase(_RealLocScaleAsymmetry):
    """Shared scales and moments of the two asymmetric Laplace distributions."""

    @property
    def left_scale(self) -> torch.Tensor:
        """The scale of the left tail, ``scale * asymmetry``."""
        return self.scale * self.asymmetry

    @property
    def right_scale(self) -> torch.Tensor:
        """The scale of the right tail, ``scale / asymmetry``."""
        return self.scale / self.asymmetry

    def _exponentials(self, sample_shape: _size) -> tuple[torch.Tensor, torch.Tensor]:
        shape = self._extended_shape(sample_shape)
        u, v = self.loc.new_empty((2,) + shape).exponential_()
        return u, v

    @property
    def mean(self) -> torch.Tensor:
        """``loc + (right_scale**2 - left_scale**2) / (left_scale + right_scale)``."""
        left, right = self.left_scale, self.right_scale
        return self.loc + (right**2 - left**2) / (left + right)

    @property
    def variance(self) -> torch.Tensor:
        """``left_scale**2 + right_scale**2``: the two tails' exponentials are independent."""
        left, right = self.left_scale, self.right_scale
        return left**2 + right**2


class AsymmetricLaplace(_SkewedLaplaceBase, family=True):
    """Laplace distribution with tails of scales ``scale * asymmetry`` (left) and ``scale / asymmetry`` (right).

    The density is ``exp(-|x - loc| / s) / (left_scale + right_scale)`` with ``s`` the scale
    of the tail ``x`` lies in. Draws are ``loc - left_scale * U + right_scale * V`` for
    independent standard exponentials, so ``rsample`` is reparameterized.

    :param loc: the mode.
    :param scale: the positive overall scale.
    :param asymmetry: the positive ratio ``sqrt(left_scale / right_scale)``.
    :param validate_args: whether to validate the parameters and values.

    >>> AsymmetricLaplace(0.0, 1.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-0.6931)
    """

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        asymmetry: torch.Tensor | float,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._set_parameters(validate_args, loc=loc, scale=scale, asymmetry=asymmetry)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        z = value - self.loc
        left, right = self.left_scale, self.right_scale
        return -z.abs() / torch.where(z < 0, left, right) - (left + right).log()

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws ``loc - left_scale * U + right_scale * V``."""
        u, v = self._exponentials(sample_shape)
        return self.loc - self.left_scale * u + self.right_scale * v


class SoftAsymmetricLaplace(_SkewedLaplaceBase, family=True):
    """An :class:`AsymmetricLaplace` variable plus independent ``Normal(0, scale * softness)`` noise.

    The density (a convolution) is smooth everywhere and has ``erfc`` terms; draws add the
    normal noise to the asymmetric Laplace draw, so ``rsample`` is reparameterized.

    :param loc: the location.
    :param scale: the positive overall scale.
    :param asymmetry: the positive ratio ``sqrt(left_scale / right_scale)``.
    :param softness: the positive ratio of the noise scale to ``scale``.
    :param validate_args: whether to validate the parameters and values.

    >>> SoftAsymmetricLaplace(0.0, 1.0).log_prob(torch.tensor(0.0))
    tensor(-1.3410)
    """

    arg_constraints = {**_RealLocScaleAsymmetry.arg_constraints, "softness": constraints.positive}
    softness: torch.Tensor

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        asymmetry: torch.Tensor | float = 1.0,
        softness: torch.Tensor | float = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._set_parameters(validate_args, loc=loc, scale=scale, asymmetry=asymmetry, softness=softness)

    @property
    def soft_scale(self) -> torch.Tensor:
        """The scale of the normal noise, ``scale * softness``."""
        return self.scale * self.softness

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density at ``value``: each tail's exponential convolved with the normal."""
        if self._validate_args:
            self._validate_sample(value)
        x = (value - self.loc) / self.scale
        left, right, soft = self.asymmetry, self.asymmetry.reciprocal(), self.softness
        half_soft_sq = soft * soft / 2
        root_two_soft = soft * math.sqrt(2)
        # In units of ``scale``: Exp(left) on the left, Exp(right) on the right, N(0, soft).
        left_term = (half_soft_sq + left * x) / left**2 + _log_erfc(
            (soft * soft + left * x) / (left * root_two_soft)
        )
        right_term = (half_soft_sq - right * x) / right**2 + _log_erfc(
            (soft * soft - right * x) / (right * root_two_soft)
        )
        return (
            math.log(0.5)
            + torch.logaddexp(left_term, right_term)
            - (left + right).log()
            - self.scale.log()
        )

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws: normal noise plus the asymmetric Laplace draw."""
        z = self.loc.new_empty(self._extended_shape(sample_shape)).normal_()
        u, v = self._exponentials(sample_shape)
        return self.loc + self.soft_scale * z - self.left_scale * u + self.right_scale * v

    @property
    def variance(self) -> torch.Tensor:
        """``left_scale**2 + right_scale**2 + soft_scale**2``."""
        return super().variance + self.soft_scale**2

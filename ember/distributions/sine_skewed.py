"""Sine-skewing of distributions on the torus."""

from __future__ import annotations

import math
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch import Uniform
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin
from ember.distributions.util import broadcast_shape
from ember._util import warn_at_caller

__all__ = ["SineSkewed"]


class SineSkewed(TorchDistribution):
    """A symmetric distribution on the d-torus skewed by ``1 + sum_i skewness_i sin(x_i - mean_i)``.

    The base density must be symmetric about its ``mean`` (a 1-D
    :class:`~ember.distributions.VonMises`, :class:`~ember.distributions.SineBivariateVonMises`,
    :class:`~ember.distributions.Uniform` on ``[-pi, pi)``, ...); the result stays normalized
    with the same normalizer (Ameijeiras-Alonso and Ley, 2022). Sampling reflects base draws
    about the mean with the probability the skew assigns.

    :param base_dist: the symmetric base distribution, with event shape ``(d,)``.
    :param skewness: per-dimension skewness in ``[-1, 1]``, last dimension ``d``; the sum of
        absolute values should not exceed one.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: if ``skewness``'s last dimension is not the base event shape.

    >>> base = Uniform(torch.full((1,), -math.pi), torch.full((1,), math.pi)).to_event(1)
    >>> SineSkewed(base, torch.tensor([0.5])).log_prob(torch.tensor([math.pi / 2]))
    tensor(-1.4324)
    """

    arg_constraints = {
        # torch leaves the constraint constructors unannotated
        "skewness": constraints.independent(constraints.interval(-1.0, 1.0), 1)  # type: ignore[no-untyped-call]
    }
    support = constraints.independent(constraints.real, 1)  # type: ignore[no-untyped-call]  # torch: unannotated

    skewness: torch.Tensor
    base_dist: TorchDistributionMixin

    def __init__(
        self,
        base_dist: TorchDistributionMixin,
        skewness: torch.Tensor,
        validate_args: bool | None = None,
    ) -> None:
        if base_dist.event_shape != skewness.shape[-1:]:
            raise ValueError(
                "Sine Skewing is only valid with a skewness parameter for each dimension of "
                f"`base_dist.event_shape`: got base event shape {tuple(base_dist.event_shape)} "
                f"and skewness of shape {tuple(skewness.shape)}"
            )
        if bool((skewness.abs().sum(-1) > 1.0).any()):
            warn_at_caller("Total skewness weight shouldn't exceed one.", UserWarning)
        batch_shape = torch.Size(broadcast_shape(base_dist.batch_shape, skewness.shape[:-1]))
        event_shape = skewness.shape[-1:]
        self.skewness = skewness.broadcast_to(batch_shape + event_shape)
        self.base_dist = base_dist.expand(batch_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def _skew(self, value: torch.Tensor) -> torch.Tensor:
        angle = (value - self.base_dist.mean).remainder(2 * math.pi)
        return (self.skewness * angle.sin()).sum(-1)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw from the base and reflect about its mean with probability ``(1 - skew) / 2``.

        :param sample_shape: the shape of independent draws.
        """
        shape = torch.Size(sample_shape)
        draws = self.base_dist.sample(shape)
        u = Uniform(0.0, self.skewness.new_ones(())).sample(shape + self.batch_shape)
        keep = (u <= 0.5 + 0.5 * self._skew(draws)).unsqueeze(-1)
        reflected = 2 * self.base_dist.mean - draws
        return (torch.where(keep, draws, reflected) + math.pi).remainder(2 * math.pi) - math.pi

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The base log density plus ``log1p(skew)``.

        :param value: angles, last dimension ``d``.
        """
        if self._validate_args:
            self._validate_sample(value)
        return self.base_dist.log_prob(value) + torch.log1p(self._skew(value))

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the base distribution and ``skewness`` to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, SineSkewed, _instance)
        shape = torch.Size(batch_shape)
        new.base_dist = self.base_dist.expand(shape)
        new.skewness = self.skewness.expand(shape + self.event_shape)
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

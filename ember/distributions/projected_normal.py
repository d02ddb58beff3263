"""The projected normal distribution over directions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.types import _size

from ember.distributions import constraints
from ember.distributions._common import new_instance
from ember.distributions.torch_distribution import TorchDistribution
from ember.ops.tensor_utils import safe_normalize

__all__ = ["ProjectedNormal"]


def _ray_moment(t: torch.Tensor, order: int) -> torch.Tensor:
    """``integral_0^inf x^order N(x; t, 1) dx``, by the recursion ``M_k = t M_(k-1) + (k-1) M_(k-2)``."""
    cdf = 0.5 * torch.erfc(t * -(0.5**0.5))
    pdf = torch.exp(-0.5 * t.square()) / math.sqrt(2 * math.pi)
    previous, current = cdf, t * cdf + pdf
    if order == 0:
        return previous
    for k in range(2, order + 1):
        previous, current = current, t * current + (k - 1) * previous
    return current


class ProjectedNormal(TorchDistribution):
    """Direction ``x / |x|`` of an isotropic normal ``x ~ N(concentration, I)``.

    A distribution over unit vectors like the von Mises-Fisher family, but reparameterized:
    ``rsample`` normalizes a shifted standard normal draw. ``log_prob`` integrates the normal
    density along the ray through the value, in closed form for every dimension. For latent
    sites under autoguides, use :class:`~ember.infer.reparam.ProjectedNormalReparam`.

    :param concentration: the normal's mean; its direction is the mode, its norm the
        concentration. The last dimension is the event.
    :param validate_args: whether to validate arguments and samples.
    :raises ValueError: if ``concentration`` is a scalar.

    >>> d = ProjectedNormal(torch.tensor([0.0, 0.0]))
    >>> d.log_prob(torch.tensor([1.0, 0.0]))  # uniform on the circle
    tensor(-1.8379)
    """

    arg_constraints = {"concentration": constraints.real_vector}
    support = constraints.sphere
    has_rsample = True

    concentration: torch.Tensor

    def __init__(
        self, concentration: torch.Tensor, *, validate_args: bool | None = None
    ) -> None:
        if concentration.dim() < 1:
            raise ValueError(
                "ProjectedNormal: expected concentration with at least one dimension, "
                f"got shape {tuple(concentration.shape)}"
            )
        self.concentration = concentration
        super().__init__(
            concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args
        )

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The event is the last dimension of ``concentration``.

        :param arg_shapes: the shape of ``concentration``.
        """
        shape = tuple(arg_shapes["concentration"])
        return torch.Size(shape[:-1]), torch.Size(shape[-1:])

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand ``concentration`` to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, ProjectedNormal, _instance)
        shape = torch.Size(batch_shape)
        new.concentration = self.concentration.expand(shape + self.event_shape)
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        """The centroid on the sphere (minimizing expected squared geodesic distance)."""
        return safe_normalize(self.concentration)

    @property
    def mode(self) -> torch.Tensor:
        """The most likely direction, that of ``concentration``."""
        return safe_normalize(self.concentration)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Normalize ``concentration + noise``, reparameterized.

        :param sample_shape: the shape of independent draws.
        """
        shape = self.shape(sample_shape)
        noise = torch.randn(shape, dtype=self.concentration.dtype, device=self.concentration.device)
        return safe_normalize(noise + self.concentration)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log density on the unit sphere.

        :param value: unit vectors of the event size.
        :raises ValueError: with validation on, for a wrong event shape or non-unit vectors.
        """
        if self._validate_args:
            if value.shape[-1:] != self.event_shape:
                raise ValueError(
                    f"Expected event shape {self.event_shape}, but got {value.shape[-1:]}"
                )
            self._validate_sample(value)
        size = self.concentration.size(-1)
        t = (self.concentration * value).sum(-1)
        perpendicular = self.concentration.square().sum(-1) - t.square()
        log_perpendicular = -0.5 * perpendicular - 0.5 * (size - 1) * math.log(2 * math.pi)
        moment = _ray_moment(t, size - 1)
        return moment.clamp(min=torch.finfo(moment.dtype).eps).log() + log_perpendicular

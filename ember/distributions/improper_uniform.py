"""A flat improper density on a constrained set, for priors that a guide or data pins down."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape

__all__ = ["ImproperUniform"]


class ImproperUniform(TorchDistribution):
    """Log density zero everywhere on ``support``; it cannot be sampled.

    Useful as a prior that only declares a latent's support (an autoguide or a
    reparameterizer supplies the rest).

    :param support: the set of values.
    :param batch_shape: the batch shape.
    :param event_shape: the event shape.
    :raises TypeError: if ``support`` is not a constraint.

    >>> d = ImproperUniform(constraints.positive, (2,), ())
    >>> d.log_prob(torch.ones(3, 2)).shape
    torch.Size([3, 2])
    """

    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self, support: constraints.Constraint, batch_shape: _size, event_shape: _size
    ) -> None:
        if not isinstance(support, constraints.Constraint):
            raise TypeError(
                f"ImproperUniform: expected support to be a Constraint, got {type(support)}"
            )
        self._support = support
        super().__init__(torch.Size(batch_shape), torch.Size(event_shape))

    @constraints.dependent_property
    def support(self) -> constraints.Constraint:
        """The set of values this distribution lives on."""
        return self._support

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """The same support with batch shape ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, ImproperUniform, _instance)
        new._support = self._support
        TorchDistribution.__init__(new, torch.Size(batch_shape), self.event_shape)
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Zeros of the broadcast batch shape of ``value`` and the distribution."""
        batch = value.shape[: value.dim() - self.event_dim]
        shape = broadcast_shape(batch, self.batch_shape)
        return torch.zeros((), dtype=value.dtype, device=value.device).expand(shape)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Not possible: the density is improper.

        :raises NotImplementedError: always.
        """
        raise NotImplementedError("ImproperUniform does not support sampling")

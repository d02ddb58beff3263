"""The distribution of the absolute value of a univariate variable."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.transforms import AbsTransform
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch import TransformedDistribution
from ember.distributions.torch_distribution import TorchDistributionMixin

__all__ = ["FoldedDistribution"]


class FoldedDistribution(TransformedDistribution):
    """``|X|`` for ``X ~ base_dist``: the density at ``y`` is ``p(y) + p(-y)``.

    :param base_dist: a distribution with scalar events.
    :param validate_args: whether to validate values.
    :raises ValueError: if the base distribution has a nonempty event shape.

    >>> import ember.distributions as dist
    >>> FoldedDistribution(dist.Normal(0.0, 1.0)).log_prob(torch.tensor(1.0))
    tensor(-0.7258)
    """

    support = constraints.positive

    def __init__(
        self, base_dist: TorchDistributionMixin, validate_args: bool | None = None
    ) -> None:
        if base_dist.event_shape:
            raise ValueError(
                "Only univariate distributions can be folded: FoldedDistribution got a base "
                f"distribution with event_shape {tuple(base_dist.event_shape)}"
            )
        super().__init__(base_dist, AbsTransform(), validate_args)  # type: ignore[arg-type]  # every Ember distribution is a torch one

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the base distribution to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, type(self), _instance)
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log(p(value) + p(-value))`` under the base density ``p``."""
        if self._validate_args:
            self._validate_sample(value)
        dim = max(len(self.batch_shape), value.dim())
        signs = value.new_tensor([1.0, -1.0]).reshape((2,) + (1,) * dim)
        log_probs: torch.Tensor = self.base_dist.log_prob(signs * value)
        return log_probs.logsumexp(0)

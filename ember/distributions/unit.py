"""The unit distribution behind ``factor`` statements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape

__all__ = ["Unit"]

_UNIT_EVENT = torch.Size((0,))  # an event with no elements: the unit type's one value


class Unit(TorchDistribution):
    """Unnormalized distribution over the unit type, whose log density is ``log_factor``.

    The single value carries no data: samples are empty tensors of shape
    ``sample_shape + batch_shape + (0,)``.

    :param log_factor: the log density, whose shape is the batch shape.
    :param has_rsample: if given, overrides the class attribute on this instance only.
    :param validate_args: whether to validate arguments.

    >>> d = Unit(torch.tensor([1.0, 2.0]))
    >>> d.sample().shape, d.log_prob(d.sample())
    (torch.Size([2, 0]), tensor([1., 2.]))
    """

    arg_constraints = {"log_factor": constraints.real}
    support = constraints.real

    def __init__(
        self,
        log_factor: torch.Tensor | float,
        *,
        has_rsample: bool | None = None,
        validate_args: bool | None = None,
    ) -> None:
        log_factor = torch.as_tensor(log_factor)
        self.log_factor = log_factor
        if has_rsample is not None:
            self.has_rsample = has_rsample
        super().__init__(log_factor.shape, _UNIT_EVENT, validate_args=validate_args)

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """The batch shape is the shape of ``log_factor``; the event shape is ``(0,)``.

        :param arg_shapes: the shape of ``log_factor``.
        """
        return torch.Size(arg_shapes["log_factor"]), _UNIT_EVENT

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand ``log_factor`` to ``batch_shape``, keeping an instance ``has_rsample``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, Unit, _instance)
        shape = torch.Size(batch_shape)
        new.log_factor = self.log_factor.expand(shape)
        if "has_rsample" in self.__dict__:
            new.has_rsample = self.has_rsample
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """An empty tensor of shape ``sample_shape + batch_shape + (0,)``.

        :param sample_shape: the shape of independent draws.
        """
        return self.log_factor.new_empty(self.shape(sample_shape))

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Same as :meth:`sample`.

        :param sample_shape: the shape of independent draws.
        """
        return self.log_factor.new_empty(self.shape(sample_shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log_factor`` broadcast with the batch dimensions of ``value``.

        :param value: an empty tensor of shape ``... + (0,)``.
        """
        shape = broadcast_shape(self.batch_shape, value.shape[:-1])
        return self.log_factor.expand(shape)

"""The point-mass distribution."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import sum_rightmost

__all__ = ["Delta"]


class Delta(TorchDistribution):
    """All probability mass on the single value ``v``.

    Samples are ``v`` itself (reparameterized, so gradients flow to ``v``); ``log_prob`` is 0
    at ``v`` and ``-inf`` elsewhere, plus ``log_density``, which keeps the family closed under
    differentiable transforms.

    :param v: the support point; its rightmost ``event_dim`` dimensions form the event.
    :param log_density: a log density added to ``log_prob``, of shape ``batch_shape``.
    :param event_dim: how many rightmost dimensions of ``v`` are event dimensions.
    :param validate_args: whether to validate arguments; if true, ``log_density`` must have
        exactly the batch shape.
    :raises ValueError: if ``event_dim > v.dim()``.

    >>> d = Delta(torch.tensor([1.0, 2.0]), event_dim=1)
    >>> d.sample(), d.log_prob(torch.tensor([1.0, 2.0])), d.log_prob(torch.tensor([1.0, 3.0]))
    (tensor([1., 2.]), tensor(0.), tensor(-inf))
    """

    has_rsample = True
    arg_constraints = {"v": constraints.dependent, "log_density": constraints.real}

    def __init__(
        self,
        v: torch.Tensor,
        log_density: torch.Tensor | float = 0.0,
        event_dim: int = 0,
        validate_args: bool | None = None,
    ) -> None:
        if event_dim > v.dim():
            raise ValueError(f"Expected event_dim <= v.dim(), actual {event_dim} vs {v.dim()}")
        batch_dim = v.dim() - event_dim
        batch_shape, event_shape = v.shape[:batch_dim], v.shape[batch_dim:]
        if not isinstance(log_density, torch.Tensor):
            log_density = torch.full(batch_shape, log_density, dtype=v.dtype, device=v.device)
        elif validate_args and log_density.shape != batch_shape:
            raise ValueError(
                f"Expected log_density.shape = {batch_shape}, actual {log_density.shape}"
            )
        self.v = v
        self.log_density = log_density
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @constraints.dependent_property
    def support(self) -> constraints.Constraint:
        """All real tensors of the event shape."""
        # torch leaves the constraint's __init__ unannotated
        return constraints.independent(constraints.real, self.event_dim)  # type: ignore[no-untyped-call]

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand ``v`` and ``log_density`` to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, Delta, _instance)
        shape = torch.Size(batch_shape)
        new.v = self.v.expand(shape + self.event_shape)
        new.log_density = self.log_density.expand(shape)
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        if "has_rsample" in self.__dict__:
            new.has_rsample = self.has_rsample
        return new

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """``v`` expanded to ``sample_shape + v.shape``.

        :param sample_shape: the shape of independent draws.
        """
        return self.v.expand(torch.Size(sample_shape) + self.v.shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log_density`` where ``value`` equals ``v`` over the whole event, else ``-inf``.

        :param value: the value to score.
        """
        v = self.v.expand(self.shape())
        log_prob = sum_rightmost((value == v).type(value.dtype).log(), self.event_dim)
        return log_prob + self.log_density

    @property
    def mean(self) -> torch.Tensor:
        """The support point ``v``."""
        return self.v

    @property
    def variance(self) -> torch.Tensor:
        """Zero, with the shape of ``v``."""
        return torch.zeros_like(self.v)

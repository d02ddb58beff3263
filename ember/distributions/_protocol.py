"""What every Ember distribution offers the effect handlers: drawing, shapes, event dims.

:class:`DistributionProtocol` is the part of
:class:`~ember.distributions.torch_distribution.TorchDistributionMixin` that does not build
other distributions; the mixin adds the combinators (``expand_by``, ``to_event``, ``mask``)
that return the wrapper classes, which live beside it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions.distribution import Distribution
from ember.distributions.util import broadcast_shape

__all__ = ["DistributionProtocol"]

_EMPTY = torch.Size()


class DistributionProtocol(Distribution):
    """Sampling by calling, shapes and event dims, for any torch-based distribution.

    ``batch_shape``, ``event_shape``, ``sample``, ``rsample`` and ``log_prob`` come from
    :class:`torch.distributions.Distribution`, which a concrete class lists first among its
    bases; they are declared here so code typed against the mixin is checked.
    """

    @property
    @abstractmethod
    def batch_shape(self) -> torch.Size:
        """The shape over which parameters are batched."""
        raise NotImplementedError

    @property
    @abstractmethod
    def event_shape(self) -> torch.Size:
        """The shape of a single sample."""
        raise NotImplementedError

    @abstractmethod
    def sample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Draw ``sample_shape`` independent samples, without gradients."""
        raise NotImplementedError

    def rsample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Draw ``sample_shape`` reparameterized samples."""
        raise NotImplementedError

    @abstractmethod
    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log density of ``value``, of shape ``value``'s sample shape plus ``batch_shape``."""
        raise NotImplementedError

    @property
    def mean(self) -> torch.Tensor:
        """The mean of the distribution."""
        raise NotImplementedError

    @property
    def variance(self) -> torch.Tensor:
        """The variance of the distribution."""
        raise NotImplementedError

    def __call__(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Draw a sample: reparameterized when ``has_rsample`` is true.

        The distribution remembers the value, so scoring that same tensor later skips the
        support check (it holds by construction).
        """
        value = self.rsample(sample_shape) if self.has_rsample else self.sample(sample_shape)
        self.__dict__["_ember_drawn"] = value
        return value

    @property
    def event_dim(self) -> int:
        """The number of event dimensions, ``len(self.event_shape)``."""
        return len(self.event_shape)

    def shape(self, sample_shape: _size = _EMPTY) -> torch.Size:
        """The shape of ``self.sample(sample_shape)``: sample, then batch, then event shape.

        :param sample_shape: the shape of independent draws.
        """
        return torch.Size(sample_shape) + self.batch_shape + self.event_shape

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """Infer ``(batch_shape, event_shape)`` from the shapes of constructor arguments.

        This default handles distributions with scalar events whose ``arg_constraints`` is a
        class-level dict; others override it or raise :class:`NotImplementedError`.

        :param arg_shapes: constructor argument names mapped to their shapes.
        """
        support = cls.__dict__.get("support", getattr(cls, "support", None))
        arg_constraints = getattr(cls, "arg_constraints", None)
        if not isinstance(support, constraints.Constraint) or not isinstance(
            arg_constraints, dict
        ):
            raise NotImplementedError(f"{cls.__name__}.infer_shapes")
        if support.event_dim > 0:
            raise NotImplementedError(f"{cls.__name__}.infer_shapes")
        batch_shapes = []
        for name, shape in arg_shapes.items():
            event_dim = arg_constraints.get(name, constraints.real).event_dim
            batch_shapes.append(tuple(shape)[: len(shape) - event_dim])
        return torch.Size(broadcast_shape(*batch_shapes)), _EMPTY

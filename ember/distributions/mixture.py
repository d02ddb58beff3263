"""A two-component mixture whose component is chosen per batch element by a fixed mask."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions._params import as_torch
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin
from ember.distributions.util import broadcast_shape

__all__ = ["MaskedConstraint", "MaskedMixture"]


class MaskedConstraint(constraints.Constraint):
    """``constraint1`` where ``mask`` is true and ``constraint0`` where it is false.

    :param mask: a bool tensor of the batch shape.
    :param constraint0: the constraint where ``mask`` is false.
    :param constraint1: the constraint where ``mask`` is true.

    >>> c = MaskedConstraint(torch.tensor([False, True]), constraints.positive, constraints.real)
    >>> c.check(torch.tensor([-1.0, -1.0]))
    tensor([False,  True])
    """

    def __init__(
        self,
        mask: torch.Tensor,
        constraint0: constraints.Constraint,
        constraint1: constraints.Constraint,
    ) -> None:
        self.mask = mask
        self.constraint0 = constraint0
        self.constraint1 = constraint1
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        """Check each entry against the constraint its mask entry selects."""
        result0: torch.Tensor = self.constraint0.check(value)  # type: ignore[no-untyped-call]  # torch: unannotated
        result1: torch.Tensor = self.constraint1.check(value)  # type: ignore[no-untyped-call]  # torch: unannotated
        return torch.where(self.mask.expand(result0.shape), result1, result0)


class MaskedMixture(TorchDistribution):
    """``component1`` where ``mask`` is true and ``component0`` where it is false.

    The mask is known (not sampled): this is the mixture that results after the component
    indicator has been observed or enumerated. Both components must have the same event
    shape; the batch shapes of the mask and the components broadcast together.

    :param mask: a bool tensor broadcastable to the components' batch shapes.
    :param component0: the distribution where ``mask`` is false.
    :param component1: the distribution where ``mask`` is true.
    :param validate_args: whether to validate values.
    :raises ValueError: if ``mask`` is not a bool tensor, the event shapes disagree, or the
        batch shapes do not broadcast.

    >>> import ember.distributions as dist
    >>> d = MaskedMixture(torch.tensor([False, True]), dist.Normal(0.0, 1.0), dist.Normal(5.0, 1.0))
    >>> d.mean
    tensor([0., 5.])
    """

    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self,
        mask: torch.Tensor,
        component0: TorchDistributionMixin,
        component1: TorchDistributionMixin,
        validate_args: bool | None = None,
    ) -> None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"Expected mask to be a BoolTensor but got {type(mask)}")
        if component0.event_shape != component1.event_shape:
            raise ValueError(
                "MaskedMixture: components event_shape disagree: "
                f"{component0.event_shape} vs {component1.event_shape}"
            )
        try:
            shape = broadcast_shape(mask.shape, component0.batch_shape, component1.batch_shape)
        except ValueError:
            raise ValueError(
                f"MaskedMixture: mask shape {tuple(mask.shape)} and component batch shapes "
                f"{tuple(component0.batch_shape)} and {tuple(component1.batch_shape)} "
                "cannot be broadcast together"
            ) from None
        batch_shape = torch.Size(shape)
        if mask.shape != batch_shape:
            mask = mask.expand(batch_shape)
        if component0.batch_shape != batch_shape:
            component0 = component0.expand(batch_shape)
        if component1.batch_shape != batch_shape:
            component1 = component1.expand(batch_shape)
        self._selector = mask
        # Pyro keeps the mask in ``.mask``, shadowing the ``mask()`` combinator on instances.
        self.__dict__["mask"] = mask
        self.component0 = component0
        self.component1 = component1
        super().__init__(batch_shape, component0.event_shape, validate_args)
        # This distribution checks values once; the components need not check them again.
        as_torch(self.component0)._validate_args = False
        as_torch(self.component1)._validate_args = False

    @property
    # torch declares a class attribute, which this read-only property narrows
    def has_rsample(self) -> bool:  # type: ignore[override]
        """Whether both components have reparameterized samplers."""
        return bool(self.component0.has_rsample and self.component1.has_rsample)

    @constraints.dependent_property
    def support(self) -> Any:
        """The components' common support, or a :class:`MaskedConstraint` of the two."""
        support0 = as_torch(self.component0).support
        support1 = as_torch(self.component1).support
        if support0 is support1:
            return support0
        assert support0 is not None and support1 is not None
        return MaskedConstraint(self._selector, support0, support1)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the mask and both components to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, MaskedMixture, _instance)
        shape = torch.Size(batch_shape)
        MaskedMixture.__init__(
            new,
            self._selector.expand(shape),
            self.component0.expand(shape),
            self.component1.expand(shape),
            validate_args=False,
        )
        new._validate_args = self._validate_args
        return new

    def _event_mask(self, sample_shape: _size) -> torch.Tensor:
        # torch.where broadcasts the mask over sample dimensions; no expanded view needed.
        return self._event_selector()

    def _event_selector(self) -> torch.Tensor:
        return self._selector.reshape(self._selector.shape + (1,) * self.event_dim)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw both components and keep each entry from the one the mask selects."""
        sample1 = self.component1.sample(sample_shape)
        sample0 = self.component0.sample(sample_shape)
        return torch.where(self._event_mask(sample_shape), sample1, sample0)

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Reparameterized draws of both components, selected by the mask."""
        sample1 = self.component1.rsample(sample_shape)
        sample0 = self.component0.rsample(sample_shape)
        return torch.where(self._event_mask(sample_shape), sample1, sample0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The selected component's log density at ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        return torch.where(
            self._selector, self.component1.log_prob(value), self.component0.log_prob(value)
        )

    @property
    def mean(self) -> torch.Tensor:
        """The selected component's mean."""
        return torch.where(self._event_selector(), self.component1.mean, self.component0.mean)

    @property
    def variance(self) -> torch.Tensor:
        """The selected component's variance."""
        selector = self._event_selector()
        return torch.where(selector, self.component1.variance, self.component0.variance)

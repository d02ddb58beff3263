"""Pyro's extensions of :mod:`torch.distributions`: shapes, expansion, events, masking.

:class:`TorchDistributionMixin` adds the methods effect handlers rely on to any torch
distribution; :class:`TorchDistribution` is the base for distributions Ember writes itself.
:class:`MaskedDistribution`, :class:`ExpandedDistribution` and :class:`Independent` are what
``.mask``, ``.expand`` (when torch cannot) and ``.to_event`` return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions import _conjugate_update as _updates
from ember.distributions._common import DelegatedRsample, TypedTorchMethods, new_instance
from ember.distributions._expansion import plan_expansion
from ember.distributions._protocol import DistributionProtocol
from ember.distributions.score_parts import ScoreParts
from ember.distributions.util import broadcast_shape, scale_and_mask

__all__ = [
    "ExpandedDistribution",
    "Independent",
    "MaskedDistribution",
    "TorchDistribution",
    "TorchDistributionMixin",
]

_EMPTY = torch.Size()


class TorchDistributionMixin(DistributionProtocol):
    """The Pyro methods every Ember distribution has on top of torch's interface.

    Drawing by calling, ``event_dim``, ``shape`` and ``infer_shapes`` come from
    :class:`~ember.distributions._protocol.DistributionProtocol`; this class adds the
    combinators that wrap a distribution (``expand``, ``expand_by``, ``to_event``, ``mask``).

    >>> import ember.distributions as dist
    >>> d = dist.Normal(torch.zeros(3), 1.0).expand_by([2]).to_event(1)
    >>> d.batch_shape, d.event_shape, d.event_dim
    (torch.Size([2]), torch.Size([3]), 1)
    """

    def expand(
        self, batch_shape: _size, _instance: Any = None
    ) -> TorchDistributionMixin:
        """Return a view of this distribution with batch shape ``batch_shape``.

        :param batch_shape: the new batch shape; existing dimensions must be 1 or match.
        :param _instance: unused; kept for compatibility with torch's signature.
        """
        return ExpandedDistribution(self, batch_shape)

    def expand_by(self, sample_shape: _size) -> TorchDistributionMixin:
        """Add ``sample_shape`` on the left of the batch shape.

        :param sample_shape: the dimensions to add.
        """
        batch_shape = torch.Size(sample_shape) + self.batch_shape
        try:
            return self.expand(batch_shape)
        except NotImplementedError:
            return TorchDistributionMixin.expand(self, batch_shape)

    def to_event(self, reinterpreted_batch_ndims: int | None = None) -> TorchDistributionMixin:
        """Reinterpret the ``n`` rightmost batch dimensions as event dimensions.

        Nested :class:`Independent` wrappers are merged, and a negative ``n`` removes event
        dimensions that an :class:`Independent` added.

        :param reinterpreted_batch_ndims: how many batch dimensions to move; ``None`` means all.
        :raises ValueError: when asked to remove more dimensions than ``Independent`` added.
        """
        ndims = reinterpreted_batch_ndims
        if ndims is None:
            ndims = len(self.batch_shape)
        base: Any = self  # becomes a plain torch distribution if an Independent wraps one
        while isinstance(base, torch.distributions.Independent):
            ndims += base.reinterpreted_batch_ndims
            base = base.base_dist
        if ndims < 0:
            raise ValueError(f"Cannot remove event dimensions from {type(self)}")
        result: TorchDistributionMixin = base if ndims == 0 else Independent(base, ndims)
        return result

    def mask(self, mask: torch.Tensor | bool) -> MaskedDistribution:
        """Mask log densities by a bool or a bool tensor broadcastable to the batch shape.

        :param mask: where false, ``log_prob`` is zero.
        """
        return MaskedDistribution(self, mask)


class TorchDistribution(torch.distributions.Distribution, TorchDistributionMixin):
    """Base class for distributions Ember implements itself (torch interface plus the mixin).

    ``expand`` uses torch's implementation when the subclass has one and falls back to
    :class:`ExpandedDistribution` otherwise.
    """

    def expand(self, batch_shape: _size, _instance: Any = None) -> TorchDistributionMixin:
        """Expand to ``batch_shape``, falling back to :class:`ExpandedDistribution`.

        Called unbound on any distribution, ``TorchDistribution.expand(d, shape)`` returns the
        generic :class:`ExpandedDistribution`, as in Pyro (whose tests use it to bypass a
        class's own ``expand``).

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        if TorchDistribution not in type(self).__mro__:
            return ExpandedDistribution(self, batch_shape)
        try:
            # torch leaves expand unannotated
            return super().expand(torch.Size(batch_shape), _instance)  # type: ignore[no-any-return]
        except NotImplementedError:
            return ExpandedDistribution(self, batch_shape)


class _Wrapper(DelegatedRsample, TorchDistribution):
    """Shared behaviour of distributions that wrap a ``base_dist`` with the same support."""

    arg_constraints: dict[str, constraints.Constraint] = {}
    base_dist: TorchDistributionMixin

    @property
    # torch declares a writable class attribute, which this read-only property narrows
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        """The base distribution's ``has_enumerate_support``."""
        return self.base_dist.has_enumerate_support

    @constraints.dependent_property
    def support(self) -> Any:
        """The base distribution's support."""
        return getattr(self.base_dist, "support", None)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The base distribution's support.

        :param expand: whether to expand over the batch shape.
        """
        return self.base_dist.enumerate_support(expand=expand)

    def _copy_to(self, new: _Wrapper, batch_shape: torch.Size) -> None:
        TorchDistribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        new._has_rsample = self._has_rsample


class MaskedDistribution(_Wrapper):
    """A distribution whose log density is zero where ``mask`` is false.

    ``mask=False`` skips computing ``log_prob`` entirely. A tensor mask zeroes masked entries
    with :func:`torch.where`, so NaNs there do not propagate. Samples are the base samples.

    :param base_dist: the distribution to mask.
    :param mask: a bool, or a bool tensor broadcastable to ``base_dist.batch_shape``.
    :raises ValueError: if ``mask`` is a tensor of another dtype.

    >>> import ember.distributions as dist
    >>> d = dist.Normal(torch.zeros(2), 1.0).mask(torch.tensor([True, False]))
    >>> d.log_prob(torch.tensor([0.0, 100.0]))
    tensor([-0.9189,  0.0000])
    """

    _mask: torch.Tensor | bool
    conjugate_update = _updates.masked_update

    def __init__(self, base_dist: TorchDistributionMixin, mask: torch.Tensor | bool) -> None:
        if isinstance(mask, torch.Tensor):
            if mask.dtype != torch.bool:
                raise ValueError(f"Expected mask to be a bool tensor, but got dtype {mask.dtype}")
            batch_shape = torch.Size(broadcast_shape(mask.shape, base_dist.batch_shape))
            mask = mask.expand(batch_shape)
            if base_dist.batch_shape != batch_shape:
                base_dist = base_dist.expand(batch_shape)
        elif not isinstance(mask, bool):
            raise TypeError(f"Expected mask to be a bool or a bool tensor, but got {type(mask)}")
        self._mask = mask
        self.base_dist = base_dist
        super().__init__(base_dist.batch_shape, base_dist.event_shape)

    def expand(self, batch_shape: _size, _instance: Any = None) -> MaskedDistribution:
        """Expand the base distribution and the mask to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: MaskedDistribution = new_instance(self, MaskedDistribution, _instance)
        shape = torch.Size(batch_shape)
        new.base_dist = self.base_dist.expand(shape)
        new._mask = self._mask.expand(shape) if isinstance(self._mask, torch.Tensor) else self._mask
        self._copy_to(new, shape)
        return new

    def sample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Sample the base distribution."""
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Reparameterized sample of the base distribution."""
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The base log density, zero where masked."""
        if self._mask is False:
            batch = value.shape[: value.dim() - self.event_dim]
            shape = broadcast_shape(self.base_dist.batch_shape, batch)
            return torch.zeros((), device=value.device).expand(shape)
        if self._mask is True:
            return self.base_dist.log_prob(value)
        return scale_and_mask(self.base_dist.log_prob(value), mask=self._mask)

    def score_parts(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ScoreParts:
        """Score parts of the base distribution, masked like ``log_prob``.

        A tensor mask masks the base's parts (``score_function`` is left alone); a bool mask
        builds the parts from this distribution's ``log_prob``.

        :param x: the value to score.
        """
        if isinstance(self._mask, bool):
            return super().score_parts(x, *args, **kwargs)
        return self.base_dist.score_parts(x, *args, **kwargs).scale_and_mask(mask=self._mask)

    @property
    def mean(self) -> torch.Tensor:
        """The base distribution's mean."""
        return self.base_dist.mean

    @property
    def variance(self) -> torch.Tensor:
        """The base distribution's variance."""
        return self.base_dist.variance


class ExpandedDistribution(_Wrapper):
    """A distribution broadcast to a larger batch shape, for those whose ``expand`` cannot.

    New leading dimensions and dimensions of size 1 in the base batch shape are filled by
    independent draws; ``log_prob`` broadcasts the base log density.

    :param base_dist: the distribution to expand.
    :param batch_shape: the new batch shape; base dimensions must be 1 or equal to it.
    :raises ValueError: if the base batch shape does not broadcast to ``batch_shape``.

    >>> import ember.distributions as dist
    >>> d = ExpandedDistribution(dist.Normal(torch.zeros(1), 1.0), [4, 3])
    >>> d.batch_shape, d.sample().shape
    (torch.Size([4, 3]), torch.Size([4, 3]))
    """

    conjugate_update = _updates.expanded_update

    def __init__(self, base_dist: TorchDistributionMixin, batch_shape: _size = _EMPTY) -> None:
        shape = torch.Size(batch_shape)
        self.base_dist = base_dist
        self._plan = plan_expansion(base_dist.batch_shape, shape)
        super().__init__(shape, base_dist.event_shape)

    def expand(self, batch_shape: _size, _instance: Any = None) -> ExpandedDistribution:
        """Expand further; returns a new distribution and leaves this one unchanged.

        :param batch_shape: the new batch shape.
        :param _instance: unused; kept for compatibility with torch's signature.
        """
        shape = torch.Size(batch_shape)
        plan_expansion(self.batch_shape, shape)  # validates that this batch shape broadcasts
        new = ExpandedDistribution(self.base_dist, shape)
        new._validate_args = self._validate_args
        new._has_rsample = self._has_rsample
        return new

    def sample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Draw samples of shape ``sample_shape + batch_shape + event_shape``."""
        shape = torch.Size(sample_shape)
        return self._plan.sample(self.base_dist.sample, shape, self.batch_shape, self.event_shape)

    def rsample(self, sample_shape: _size = _EMPTY) -> torch.Tensor:
        """Draw reparameterized samples of shape ``sample_shape + batch_shape + event_shape``."""
        shape = torch.Size(sample_shape)
        return self._plan.sample(self.base_dist.rsample, shape, self.batch_shape, self.event_shape)

    def _value_batch_shape(self, value: torch.Tensor) -> tuple[int, ...]:
        return broadcast_shape(self.batch_shape, value.shape[: value.dim() - self.event_dim])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The base log density, broadcast to the expanded batch shape."""
        shape = self._value_batch_shape(value)
        return self.base_dist.log_prob(value).expand(shape)

    def score_parts(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ScoreParts:
        """The base distribution's score parts, broadcast to the expanded batch shape."""
        shape = self._value_batch_shape(x)
        parts = self.base_dist.score_parts(x, *args, **kwargs)
        if self.batch_shape == self.base_dist.batch_shape:
            return parts
        score_function, entropy_term = (
            p.expand(shape) if isinstance(p, torch.Tensor) else p for p in parts[1:]
        )
        return ScoreParts(parts.log_prob.expand(shape), score_function, entropy_term)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The base support along a new leftmost dimension, optionally expanded.

        :param expand: whether to expand the result over the batch shape.
        """
        values = self.base_dist.enumerate_support(expand=False)
        values = values.reshape(values.shape[:1] + (1,) * len(self.batch_shape))
        return values.expand(values.shape[:1] + self.batch_shape) if expand else values

    @property
    def mean(self) -> torch.Tensor:
        """The base mean, broadcast to the expanded shape."""
        return self.base_dist.mean.expand(self.batch_shape + self.event_shape)

    @property
    def variance(self) -> torch.Tensor:
        """The base variance, broadcast to the expanded shape."""
        return self.base_dist.variance.expand(self.batch_shape + self.event_shape)


class Independent(
    DelegatedRsample,
    TypedTorchMethods,
    torch.distributions.Independent[Any],
    TorchDistributionMixin,
):
    """Reinterpret batch dimensions of a distribution as event dimensions.

    This is what :meth:`TorchDistributionMixin.to_event` returns. Argument validation is the
    base distribution's setting, and ``has_rsample`` can be overridden with ``has_rsample_``.

    :param base_distribution: the distribution to wrap.
    :param reinterpreted_batch_ndims: how many rightmost batch dimensions become event ones.
    :param validate_args: overrides the base distribution's validation setting when given.

    >>> import ember.distributions as dist
    >>> d = Independent(dist.Normal(torch.zeros(2, 3), 1.0), 1)
    >>> d.batch_shape, d.event_shape, d.log_prob(torch.zeros(2, 3)).shape
    (torch.Size([2]), torch.Size([3]), torch.Size([2]))
    """

    conjugate_update = _updates.independent_update

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """Not available: the shapes depend on the base distribution, not on tensor shapes."""
        raise NotImplementedError(f"{cls.__name__}.infer_shapes")

    @property
    def _validate_args(self) -> bool:
        return bool(self.base_dist._validate_args)

    @_validate_args.setter
    def _validate_args(self, value: bool) -> None:
        self.base_dist._validate_args = value

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the base distribution so this one has batch shape ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, Independent, _instance)
        super().expand(batch_shape, _instance=new)
        new._has_rsample = self._has_rsample
        return new

"""Distributions and transforms that become concrete once given a context tensor.

A conditional normalizing flow is a :class:`ConditionalTransformedDistribution`: calling
``condition(context)`` builds an ordinary
:class:`~ember.distributions.TransformedDistribution` whose transforms' parameters are
computed from ``context`` (by a hypernetwork).

>>> import torch
>>> import ember.distributions as dist
>>> from ember.distributions.transforms import conditional_planar
>>> flow = ConditionalTransformedDistribution(dist.Normal(torch.zeros(2), 1.0).to_event(1),
...                                           [conditional_planar(2, context_dim=3)])
>>> flow.condition(torch.zeros(3)).sample(torch.Size([4])).shape
torch.Size([4, 2])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch.distributions import Distribution
from torch.distributions.transforms import Transform

from ember.distributions.torch import TransformedDistribution
from ember.distributions.torch_transform import ComposeTransformModule

__all__ = [
    "ConditionalComposeTransformModule",
    "ConditionalDistribution",
    "ConditionalTransform",
    "ConditionalTransformModule",
    "ConditionalTransformedDistribution",
]


class ConditionalDistribution(ABC):
    """A family of distributions indexed by a context: :meth:`condition` picks one."""

    @abstractmethod
    def condition(self, context: torch.Tensor) -> Distribution:
        """The distribution for ``context``.

        :param context: the conditioning tensor.
        """
        raise NotImplementedError


class ConditionalTransform(ABC):
    """A family of transforms indexed by a context: :meth:`condition` picks one."""

    @abstractmethod
    def condition(self, context: torch.Tensor) -> Transform:
        """The transform for ``context``.

        :param context: the conditioning tensor.
        """
        raise NotImplementedError


class ConditionalTransformModule(ConditionalTransform, torch.nn.Module):
    """A :class:`ConditionalTransform` whose (hypernetwork) parameters are module parameters."""

    def __hash__(self) -> int:
        return object.__hash__(self)

    @property
    def inv(self) -> ConditionalTransformModule:
        """The conditional inverse: ``self.inv.condition(c)`` is ``self.condition(c).inv``."""
        return _ConditionalInverseTransformModule(self)


class _ConditionalInverseTransformModule(ConditionalTransformModule):
    def __init__(self, transform: ConditionalTransformModule) -> None:
        super().__init__()
        self._transform = transform

    @property
    def inv(self) -> ConditionalTransformModule:
        return self._transform

    def condition(self, context: torch.Tensor) -> Transform:
        return self._transform.condition(context).inv


class _ConstantConditionalTransform(ConditionalTransform):
    def __init__(self, transform: Transform) -> None:
        assert isinstance(transform, Transform)
        self.transform = transform

    def condition(self, context: torch.Tensor) -> Transform:
        return self.transform


class _ConstantConditionalDistribution(ConditionalDistribution):
    def __init__(self, base_dist: Distribution) -> None:
        assert isinstance(base_dist, Distribution)
        self.base_dist = base_dist

    def condition(self, context: torch.Tensor) -> Distribution:
        return self.base_dist


def _as_conditional(transform: Transform | ConditionalTransform) -> ConditionalTransform:
    if isinstance(transform, ConditionalTransform):
        return transform
    return _ConstantConditionalTransform(transform)


class ConditionalComposeTransformModule(ConditionalTransformModule, torch.nn.ModuleList):
    """Compose conditional (and plain) transforms; conditioning conditions every part.

    :param transforms: the parts, applied left to right; plain transforms ignore the context.
    :param cache_size: 0 or 1, the cache size of the composed transform.
    :raises ValueError: for another ``cache_size``.
    """

    def __init__(self, transforms: Sequence[Transform | ConditionalTransform], cache_size: int = 0) -> None:
        super().__init__()
        if cache_size not in {0, 1}:
            raise ValueError("cache_size must be 0 or 1")
        self.transforms = [_as_conditional(t) for t in transforms]
        self._cache_size = cache_size
        for t in transforms:
            if isinstance(t, torch.nn.Module):
                self.append(t)

    def condition(self, context: torch.Tensor) -> ComposeTransformModule:
        return ComposeTransformModule([t.condition(context) for t in self.transforms]).with_cache(self._cache_size)


class ConditionalTransformedDistribution(ConditionalDistribution):
    """A base distribution pushed through transforms, any of which may depend on a context.

    :param base_dist: the base distribution, or a :class:`ConditionalDistribution`.
    :param transforms: the transforms, plain or conditional, applied left to right.
    """

    def __init__(
        self,
        base_dist: Distribution | ConditionalDistribution,
        transforms: Sequence[Transform | ConditionalTransform],
    ) -> None:
        self.base_dist: ConditionalDistribution = (
            base_dist if isinstance(base_dist, ConditionalDistribution) else _ConstantConditionalDistribution(base_dist)
        )
        self.transforms = [_as_conditional(t) for t in transforms]

    def condition(self, context: torch.Tensor) -> TransformedDistribution:
        base_dist = self.base_dist.condition(context)
        transforms = [t.condition(context) for t in self.transforms]
        return TransformedDistribution(base_dist, transforms)

    def clear_cache(self) -> None:
        """Nothing is cached between conditionings; kept for Pyro's interface."""

"""Ember's versions of torch's discrete distributions.

Each class subclasses its :mod:`torch.distributions` namesake and
:class:`~ember.distributions.TorchDistributionMixin`; the few that change torch's behaviour
say so. :mod:`ember.distributions.torch` re-exports all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch.types import _size

from ember.distributions._common import TypedTorchMethods, new_instance
from ember.distributions.torch_distribution import TorchDistributionMixin
from ember.distributions.util import broadcast_shape

__all__ = [
    "Bernoulli",
    "Binomial",
    "Categorical",
    "Geometric",
    "Multinomial",
    "NegativeBinomial",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "Poisson",
]

# Pyro's enumeration code reads this attribute to recognise enumerated Categorical values.
_CATEGORICAL_SUPPORT = "_pyro_categorical_support"


def _categorical_shapes(**arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
    """Shapes of a distribution whose ``probs`` or ``logits`` end in the category dimension."""
    shape = tuple(arg_shapes["logits"] if "logits" in arg_shapes else arg_shapes["probs"])
    batch_shapes = [shape[:-1]]
    if "total_count" in arg_shapes:
        batch_shapes.append(tuple(arg_shapes["total_count"]))
    return torch.Size(broadcast_shape(*batch_shapes)), torch.Size(shape[-1:])


class Bernoulli(TypedTorchMethods, torch.distributions.Bernoulli, TorchDistributionMixin):
    """Bernoulli distribution over ``{0, 1}``, parameterized by ``probs`` or ``logits``.

    >>> Bernoulli(torch.tensor([0.25, 0.5])).enumerate_support(expand=False)
    tensor([[0.],
            [1.]])
    """


class Binomial(TypedTorchMethods, torch.distributions.Binomial, TorchDistributionMixin):
    """Binomial distribution: successes in ``total_count`` trials.

    >>> Binomial(2, torch.tensor(0.5)).enumerate_support()
    tensor([0., 1., 2.])
    """


class Categorical(TypedTorchMethods, torch.distributions.Categorical, TorchDistributionMixin):
    """Categorical distribution over ``{0, ..., K - 1}``, parameterized by ``probs`` or ``logits``.

    ``enumerate_support(expand=False)`` marks its result so that ``log_prob`` on it reshapes
    ``logits`` instead of gathering, which makes enumeration cheap.

    >>> d = Categorical(logits=torch.tensor([0.0, 0.0]))
    >>> d.log_prob(d.enumerate_support(expand=False))
    tensor([-0.6931, -0.6931])
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log probability of ``value``; fast for values from :meth:`enumerate_support`.

        :param value: category indices.
        """
        if getattr(value, _CATEGORICAL_SUPPORT, None) == id(self):
            extra_dims = value.dim() - 1 - len(self.batch_shape)
            if extra_dims >= 0 and value.size(0) == self._num_events:
                if self._validate_args:
                    self._validate_sample(value)
                logits = self.logits.movedim(-1, 0)
                return logits.reshape(logits.shape[:1] + (1,) * extra_dims + self.batch_shape)
        return super().log_prob(value)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All categories along a new leftmost dimension.

        :param expand: whether to expand over the batch shape; if not, the result is marked
            for the fast path of :meth:`log_prob`.
        """
        values = super().enumerate_support(expand=expand)
        if not expand:
            setattr(values, _CATEGORICAL_SUPPORT, id(self))
        return values


class Geometric(TypedTorchMethods, torch.distributions.Geometric, TorchDistributionMixin):
    """Number of failures before the first success in Bernoulli trials.

    ``log_prob`` is computed from ``logits``, which stays finite where ``probs`` rounds to 1.

    >>> Geometric(torch.tensor(0.5)).log_prob(torch.tensor(2.0))
    tensor(-2.0794)
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log probability of ``value`` failures.

        :param value: a count.
        """
        if self._validate_args:
            self._validate_sample(value)
        logits: torch.Tensor = self.logits
        return (-value - 1) * F.softplus(logits) + logits


class Multinomial(TypedTorchMethods, torch.distributions.Multinomial, TorchDistributionMixin):
    """Counts of each category in ``total_count`` categorical draws.

    >>> Multinomial(4, torch.tensor([0.5, 0.5])).log_prob(torch.tensor([2.0, 2.0]))
    tensor(-0.9808)
    """

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """Event shape from the last dim of ``probs``/``logits``, batch shape from the rest.

        :param arg_shapes: constructor argument names mapped to their shapes.
        """
        return _categorical_shapes(**arg_shapes)


class NegativeBinomial(
    TypedTorchMethods, torch.distributions.NegativeBinomial, TorchDistributionMixin
):
    """Number of successes before ``total_count`` failures in Bernoulli trials.

    >>> NegativeBinomial(1.0, torch.tensor(0.5)).log_prob(torch.tensor(0.0))
    tensor(-0.6931)
    """


class OneHotCategorical(
    TypedTorchMethods, torch.distributions.OneHotCategorical, TorchDistributionMixin
):
    """Categorical distribution over one-hot vectors.

    >>> OneHotCategorical(torch.tensor([0.25, 0.75])).enumerate_support()
    tensor([[1., 0.],
            [0., 1.]])
    """

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """Batch shape from ``probs``/``logits`` without the last dim, which is the event shape.

        :param arg_shapes: constructor argument names mapped to their shapes.
        """
        return _categorical_shapes(**arg_shapes)


class OneHotCategoricalStraightThrough(
    TypedTorchMethods, torch.distributions.OneHotCategoricalStraightThrough, TorchDistributionMixin
):
    """One-hot categorical whose ``rsample`` passes gradients straight through to ``probs``.

    >>> d = OneHotCategoricalStraightThrough(torch.tensor([0.0, 1.0]))
    >>> d.rsample(), d.has_rsample
    (tensor([0., 1.]), True)
    """

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """Batch shape from ``probs``/``logits`` without the last dim, which is the event shape.

        :param arg_shapes: constructor argument names mapped to their shapes.
        """
        return _categorical_shapes(**arg_shapes)


class Poisson(TypedTorchMethods, torch.distributions.Poisson, TorchDistributionMixin):
    """Poisson distribution with rate ``rate``.

    :param rate: the rate (mean).
    :param is_sparse: compute ``log_prob`` only where the value is nonzero, which is faster
        for mostly-zero data; the result is the same.
    :param validate_args: whether to validate arguments and samples.

    >>> Poisson(torch.tensor([1.0, 2.0]), is_sparse=True).log_prob(torch.tensor([0.0, 1.0]))
    tensor([-1.0000, -1.3069])
    """

    def __init__(
        self,
        rate: torch.Tensor | float,
        *,
        is_sparse: bool = False,
        validate_args: bool | None = None,
    ) -> None:
        self.is_sparse = is_sparse
        super().__init__(rate, validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand to ``batch_shape``, keeping ``is_sparse``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, Poisson, _instance)
        super().expand(batch_shape, _instance=new)
        new.is_sparse = self.is_sparse
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log probability of the count ``value``.

        :param value: a count.
        """
        if not self.is_sparse:
            return super().log_prob(value)
        if self._validate_args:
            self._validate_sample(value)
        shape = broadcast_shape(self.rate.shape, value.shape)
        rate, value = self.rate.expand(shape), value.expand(shape)
        nonzero = value > 0
        counts = value[nonzero]
        terms = counts * rate[nonzero].log() - (counts + 1).lgamma()
        return torch.zeros_like(rate).masked_scatter(nonzero, terms) - rate

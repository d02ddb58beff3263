"""Relaxed discrete distributions whose samples are discrete, with straight-through gradients.

``rsample`` draws the relaxed (continuous) sample, rounds it to a hard one, and lets the
gradient pass through the rounding unchanged. The hard sample remembers its soft value, so
``log_prob`` of a sample scores the relaxed value it came from.
"""

from __future__ import annotations

import torch
from torch.distributions.utils import clamp_probs
from torch.types import _size

from ember.distributions.torch import RelaxedBernoulli, RelaxedOneHotCategorical

__all__ = ["RelaxedBernoulliStraightThrough", "RelaxedOneHotCategoricalStraightThrough"]

_SOFT = "_unquantize"  # Pyro's attribute name, so values cross between the two libraries


class _QuantizeCategorical(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, soft: torch.Tensor) -> torch.Tensor:
        hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1)
        setattr(hard, _SOFT, soft)
        return hard

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class _QuantizeBernoulli(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, soft: torch.Tensor) -> torch.Tensor:
        hard = soft.round()
        setattr(hard, _SOFT, soft)
        return hard

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class RelaxedOneHotCategoricalStraightThrough(RelaxedOneHotCategorical):
    """Gumbel-softmax with one-hot samples and straight-through gradients.

    :param temperature: the relaxation temperature.
    :param probs: the category probabilities; or give ``logits``.
    :param logits: the category log-odds.
    :param validate_args: whether to validate the parameters.

    >>> d = RelaxedOneHotCategoricalStraightThrough(torch.tensor(0.5), torch.ones(3) / 3)
    >>> float(d.rsample().sum())
    1.0
    """

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """A one-hot sample whose gradient is that of the relaxed sample."""
        soft = clamp_probs(super().rsample(sample_shape))
        hard: torch.Tensor = _QuantizeCategorical.apply(soft)  # type: ignore[no-untyped-call]  # torch: unannotated
        return hard

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The relaxed log density of the soft value behind ``value`` (or of ``value``)."""
        return super().log_prob(getattr(value, _SOFT, value))


class RelaxedBernoulliStraightThrough(RelaxedBernoulli):
    """Relaxed Bernoulli with ``{0, 1}`` samples and straight-through gradients.

    :param temperature: the relaxation temperature.
    :param probs: the probability of one; or give ``logits``.
    :param logits: the log-odds of one.
    :param validate_args: whether to validate the parameters.

    >>> d = RelaxedBernoulliStraightThrough(torch.tensor(0.5), torch.tensor([0.3, 0.7]))
    >>> s = d.rsample()
    >>> bool(((s == 0) | (s == 1)).all())
    True
    """

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """A ``{0, 1}`` sample whose gradient is that of the relaxed sample."""
        soft = clamp_probs(super().rsample(sample_shape))
        hard: torch.Tensor = _QuantizeBernoulli.apply(soft)  # type: ignore[no-untyped-call]  # torch: unannotated
        return hard

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The relaxed log density of the soft value behind ``value`` (or of ``value``)."""
        return super().log_prob(getattr(value, _SOFT, value))

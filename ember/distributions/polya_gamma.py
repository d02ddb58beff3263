"""The Polya-Gamma ``PG(1, 0)`` distribution, truncated for a finite series."""

from __future__ import annotations

import math
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions.torch_distribution import TorchDistribution

__all__ = ["TruncatedPolyaGamma"]


class TruncatedPolyaGamma(TorchDistribution):
    """``PG(1, 0)`` restricted to ``[0, truncation_point]``, with approximate sampler and density.

    Samples sum ``num_gamma_variates`` terms of the series
    ``X = 1 / (2 pi^2) sum_k E_k / (k - 1/2)^2`` with standard exponential ``E_k`` and clamp at
    the truncation point; ``log_prob`` sums ``num_log_prob_terms`` terms of the alternating
    series of the density. Both are accurate well inside ``[0, 2.5]``.

    :param prototype: a tensor giving the dtype and device.
    :param validate_args: whether to validate values.

    >>> d = TruncatedPolyaGamma(torch.tensor(0.0))
    >>> bool(d.support.check(d.sample((5,))).all())
    True
    """

    truncation_point = 2.5
    num_log_prob_terms = 7
    num_gamma_variates = 8
    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.interval(0.0, truncation_point)  # type: ignore[no-untyped-call]  # torch: unannotated
    has_rsample = False

    def __init__(self, prototype: torch.Tensor, validate_args: bool | None = None) -> None:
        self.prototype = prototype
        super().__init__(torch.Size(), torch.Size(), validate_args=validate_args)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """The same distribution with batch shape ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, TruncatedPolyaGamma, _instance)
        TorchDistribution.__init__(new, torch.Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        new.prototype = self.prototype
        return new

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Truncated series of scaled exponentials, clamped at ``truncation_point``.

        Draws have shape ``batch_shape + sample_shape`` (Pyro's order).
        """
        k = torch.arange(
            0.5, self.num_gamma_variates, device=self.prototype.device, dtype=self.prototype.dtype
        )
        shape = self.batch_shape + torch.Size(sample_shape) + (self.num_gamma_variates,)
        x = self.prototype.new_empty(shape).exponential_()
        total = (x / k.pow(2.0)).sum(-1)
        return torch.clamp(total * (0.5 / math.pi**2), max=self.truncation_point)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log of the truncated alternating series for the ``PG(1, 0)`` density."""
        if self._validate_args:
            self._validate_sample(value)
        value = value.unsqueeze(-1)
        two_n_plus_one = 2.0 * torch.arange(
            self.num_log_prob_terms, device=self.prototype.device, dtype=value.dtype
        ) + 1.0
        log_terms = two_n_plus_one.log() - 1.5 * value.log() - 0.125 * two_n_plus_one.pow(2) / value
        positive = torch.logsumexp(log_terms[..., ::2], dim=-1).exp()
        negative = torch.logsumexp(log_terms[..., 1::2], dim=-1).exp()
        return (positive - negative).log() - 0.5 * math.log(2.0 * math.pi)

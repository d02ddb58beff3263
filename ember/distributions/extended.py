"""Binomial and beta-binomial distributions extended to every integer.

They accept any integer ``total_count`` and any integer value; values outside
``[0, total_count]`` have probability zero instead of raising, which suits models whose
counts are themselves latent.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import constraints

from ember.distributions.conjugate import BetaBinomial
from ember.distributions.constraints import integer
from ember.distributions.torch import Binomial
from ember.ops.special import log_beta, log_binomial

__all__ = ["ExtendedBetaBinomial", "ExtendedBinomial"]


class ExtendedBinomial(Binomial):
    """A :class:`~ember.distributions.Binomial` whose support is all integers.

    ``log_prob`` is ``-inf`` outside ``[0, total_count]``, including for negative
    ``total_count``.

    >>> ExtendedBinomial(2, torch.tensor(0.5)).log_prob(torch.tensor([-1.0, 1.0, 3.0]))
    tensor([   -inf, -0.6931,    -inf])
    """

    arg_constraints = {
        "total_count": integer,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }
    support = integer

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The binomial log probability inside ``[0, total_count]``, else ``-inf``."""
        invalid = (value < 0) | (value > self.total_count)
        return super().log_prob(value).masked_fill(invalid, -math.inf)


class ExtendedBetaBinomial(BetaBinomial):
    """A :class:`~ember.distributions.BetaBinomial` whose support is all integers.

    ``log_prob`` is ``-inf`` outside ``[0, total_count]``, including for negative
    ``total_count``.

    >>> ExtendedBetaBinomial(1.0, 1.0, 4).log_prob(torch.tensor([2.0, 5.0])).exp()
    tensor([0.2000, 0.0000])
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "total_count": integer,
    }
    support = integer

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The beta-binomial log probability inside ``[0, total_count]``, else ``-inf``."""
        if self._validate_args:
            self._validate_sample(value)
        total_count = self.total_count
        invalid = (value < 0) | (value > total_count)
        # Score a valid stand-in (n >= 0, 0 <= k <= n) and mask it: no NaN from lgamma(<= 0).
        n = total_count.clamp(min=0)
        k = value.masked_fill(invalid, 0)
        a, b = self.concentration1, self.concentration0
        tol = self.approx_log_prob_tol
        result = log_binomial(n, k, tol) + log_beta(k + a, n - k + b, tol) - log_beta(a, b, tol)
        return result.masked_fill(invalid, -math.inf)

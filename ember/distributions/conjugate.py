"""Compound count distributions with a conjugate prior integrated out.

:class:`BetaBinomial` (a binomial whose probability is Beta distributed),
:class:`DirichletMultinomial` (a multinomial with Dirichlet probabilities) and
:class:`GammaPoisson` (a Poisson with a Gamma rate, i.e. a negative binomial).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions._params import (
    broadcast_parameters,
    broadcast_tensors,
    expand_parameters,
)
from ember.distributions.torch import Beta, Binomial, Dirichlet, Gamma, Multinomial, Poisson
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape
from ember.ops.special import log_beta, log_binomial

__all__ = ["BetaBinomial", "DirichletMultinomial", "GammaPoisson"]


class BetaBinomial(TorchDistribution):
    """Successes in ``total_count`` trials whose success probability is ``Beta(c1, c0)``.

    ``log_prob`` is ``log C(n, k) + log B(k + c1, n - k + c0) - log B(c1, c0)``. Setting the
    class attribute ``approx_log_prob_tol`` above 0.02 switches to a cheaper Stirling
    approximation with that absolute error (see :func:`ember.ops.special.log_beta`).

    :param concentration1: the positive Beta ``alpha`` (pseudo-count of successes).
    :param concentration0: the positive Beta ``beta`` (pseudo-count of failures).
    :param total_count: the nonnegative integer number of trials.
    :param validate_args: whether to validate the parameters and values.

    >>> BetaBinomial(1.0, 1.0, 4).log_prob(torch.tensor(2.0)).exp()
    tensor(0.2000)
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "total_count": constraints.nonnegative_integer,
    }
    has_enumerate_support = True
    support = Binomial.support
    approx_log_prob_tol = 0.0

    def __init__(
        self,
        concentration1: torch.Tensor | float,
        concentration0: torch.Tensor | float,
        total_count: torch.Tensor | float = 1,
        validate_args: bool | None = None,
    ) -> None:
        self.concentration1, self.concentration0, self.total_count = broadcast_parameters(
            type(self).__name__,
            concentration1=concentration1,
            concentration0=concentration0,
            total_count=total_count,
        )
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    @lazy_property
    def _beta(self) -> Beta:
        # Built only to sample: torch's Beta stacks its parameters, a copy log_prob avoids.
        return Beta(self.concentration1, self.concentration0, validate_args=False)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        names = ("concentration1", "concentration0", "total_count")
        return expand_parameters(self, BetaBinomial, _instance, batch_shape, names)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw a Beta probability, then a binomial count with it."""
        probs = self._beta.sample(sample_shape)
        return Binomial(self.total_count, probs, validate_args=False).sample()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log probability of ``value`` successes."""
        if self._validate_args:
            self._validate_sample(value)
        n, a, b = self.total_count, self.concentration1, self.concentration0
        tol = self.approx_log_prob_tol
        return log_binomial(n, value, tol) + log_beta(value + a, n - value + b, tol) - log_beta(
            a, b, tol
        )

    @property
    def mean(self) -> torch.Tensor:
        """``total_count * c1 / (c1 + c0)``."""
        return self.concentration1 / (self.concentration1 + self.concentration0) * self.total_count

    @property
    def variance(self) -> torch.Tensor:
        """``n p (1 - p) (c1 + c0 + n) / (c1 + c0 + 1)`` with ``p = c1 / (c1 + c0)``."""
        total = self.concentration0 + self.concentration1
        p = self.concentration1 / total
        n = self.total_count
        return n * p * (1 - p) * (total + n) / (total + 1)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The counts ``0, ..., total_count`` along a new leftmost dimension.

        :param expand: whether to expand over the batch shape.
        :raises NotImplementedError: if ``total_count`` differs across the batch.
        """
        count = int(self.total_count.max())
        if int(self.total_count.min()) != count:
            raise NotImplementedError(
                "Inhomogeneous total count not supported by `enumerate_support`."
            )
        values = torch.arange(
            1 + count, dtype=self.concentration1.dtype, device=self.concentration1.device
        )
        values = values.view((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + self.batch_shape) if expand else values


def _log_beta_with_count(
    alpha: torch.Tensor, value: torch.Tensor, is_sparse: bool
) -> torch.Tensor:
    # log(value * B(value, alpha)): zero where value == 0, which the sparse path skips.
    if not is_sparse:
        return torch.lgamma(1 + value) + torch.lgamma(alpha) - torch.lgamma(value + alpha)
    value, alpha = broadcast_tensors(value, alpha)
    nonzero = value != 0
    result = torch.zeros_like(value)
    v, a = value[nonzero], alpha[nonzero]
    result[nonzero] = torch.lgamma(1 + v) + torch.lgamma(a) - torch.lgamma(v + a)
    return result


class DirichletMultinomial(TorchDistribution):
    """Counts over categories from ``total_count`` draws with Dirichlet-distributed probabilities.

    :param concentration: the positive Dirichlet concentration; its last dimension indexes the
        categories.
    :param total_count: the nonnegative integer number of draws.
    :param is_sparse: whether ``log_prob`` skips categories with zero counts (faster for
        sparse count vectors).
    :param validate_args: whether to validate the parameters and values.

    >>> d = DirichletMultinomial(torch.ones(3), 2)
    >>> d.log_prob(torch.tensor([1.0, 1.0, 0.0])).exp()
    tensor(0.1667)
    """

    arg_constraints = {
        # torch leaves the constraint's __init__ unannotated
        "concentration": constraints.independent(constraints.positive, 1),  # type: ignore[no-untyped-call]
        "total_count": constraints.nonnegative_integer,
    }
    support = Multinomial.support

    def __init__(
        self,
        concentration: torch.Tensor,
        total_count: torch.Tensor | float = 1,
        is_sparse: bool = False,
        validate_args: bool | None = None,
    ) -> None:
        batch_shape = concentration.shape[:-1]
        event_shape = concentration.shape[-1:]
        if isinstance(total_count, torch.Tensor):
            batch_shape = torch.Size(broadcast_shape(batch_shape, total_count.shape))
            concentration = concentration.expand(batch_shape + (-1,))
            total_count = total_count.expand(batch_shape)
        else:
            total_count = concentration.new_tensor(total_count)
        self._dirichlet = Dirichlet(concentration, validate_args=False)
        self.total_count = total_count
        self.is_sparse = is_sparse
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def concentration(self) -> torch.Tensor:
        """The Dirichlet concentration."""
        return self._dirichlet.concentration

    @classmethod
    def infer_shapes(cls, **arg_shapes: Sequence[int]) -> tuple[torch.Size, torch.Size]:
        """Batch shape from ``concentration[:-1]`` and ``total_count``; event from the last dim.

        :param arg_shapes: ``concentration`` and optionally ``total_count`` shapes.
        """
        concentration = tuple(arg_shapes["concentration"])
        total_count = tuple(arg_shapes.get("total_count", ()))
        batch_shape = broadcast_shape(concentration[:-1], total_count)
        return torch.Size(batch_shape), torch.Size(concentration[-1:])

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, DirichletMultinomial, _instance)
        shape = torch.Size(batch_shape)
        new._dirichlet = self._dirichlet.expand(shape)
        new.total_count = self.total_count.expand(shape)
        new.is_sparse = self.is_sparse
        TorchDistribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw Dirichlet probabilities, then multinomial counts with them.

        :raises NotImplementedError: if ``total_count`` differs across the batch.
        """
        probs = self._dirichlet.sample(sample_shape)
        count = int(self.total_count.max())
        if int(self.total_count.min()) != count:
            raise NotImplementedError("Inhomogeneous total count not supported by `sample`.")
        return Multinomial(count, probs).sample()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log probability of the count vector ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        alpha = self.concentration
        total = _log_beta_with_count(alpha.sum(-1), value.sum(-1), self.is_sparse)
        return total - _log_beta_with_count(alpha, value, self.is_sparse).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        """``total_count * concentration / concentration.sum(-1)``."""
        return self._dirichlet.mean * self.total_count.unsqueeze(-1)

    @property
    def variance(self) -> torch.Tensor:
        """The per-category variance ``n p (1 - p) (n + A) / (1 + A)``, ``A`` the total concentration."""
        n = self.total_count.unsqueeze(-1)
        total = self.concentration.sum(-1, keepdim=True)
        p = self.concentration / total
        return n * p * (1 - p) * (n + total) / (1 + total)


class GammaPoisson(TorchDistribution):
    """A Poisson count whose rate is ``Gamma(concentration, rate)``: a negative binomial.

    :param concentration: the positive Gamma shape.
    :param rate: the positive Gamma rate.
    :param validate_args: whether to validate the parameters and values.

    >>> GammaPoisson(1.0, 1.0).log_prob(torch.tensor(0.0)).exp()
    tensor(0.5000)
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = Poisson.support

    def __init__(
        self,
        concentration: torch.Tensor | float,
        rate: torch.Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        self.concentration, self.rate = broadcast_parameters(
            type(self).__name__, concentration=concentration, rate=rate
        )
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @lazy_property
    def _gamma(self) -> Gamma:
        # Built only to sample, which keeps construction and log_prob cheap.
        return Gamma(self.concentration, self.rate, validate_args=False)

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        names = ("concentration", "rate")
        return expand_parameters(self, GammaPoisson, _instance, batch_shape, names)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw a Gamma rate, then a Poisson count with it."""
        rate = self._gamma.sample(sample_shape)
        return torch.poisson(rate)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log C(k + a - 1, k) + a log(b / (1 + b)) - k log(1 + b)`` for ``k = value``."""
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration, self.rate
        post = a + value
        return (
            torch.lgamma(post)
            - torch.lgamma(a)
            - torch.lgamma(value + 1)
            + a * b.log()
            - post * torch.log1p(b)
        )

    @property
    def mean(self) -> torch.Tensor:
        """``concentration / rate``."""
        return self.concentration / self.rate

    @property
    def variance(self) -> torch.Tensor:
        """``concentration (1 + rate) / rate**2``."""
        return self.concentration / self.rate.pow(2) * (1 + self.rate)

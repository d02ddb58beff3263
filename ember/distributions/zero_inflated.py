"""Zero-inflated count distributions: a point mass at zero mixed with a base distribution."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property, logits_to_probs, probs_to_logits
from torch.nn.functional import softplus
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions._params import as_torch
from ember.distributions.torch import NegativeBinomial, Poisson
from ember.distributions.torch_distribution import TorchDistribution, TorchDistributionMixin
from ember.distributions.util import broadcast_shape

__all__ = ["ZeroInflatedDistribution", "ZeroInflatedNegativeBinomial", "ZeroInflatedPoisson"]


class ZeroInflatedDistribution(TorchDistribution):
    """With probability ``gate`` the value is zero, otherwise a draw from ``base_dist``.

    Give exactly one of ``gate`` and ``gate_logits``; the other is derived lazily.

    :param base_dist: a distribution with scalar events.
    :param gate: the probability of the extra zero, in ``[0, 1]``.
    :param gate_logits: the log-odds of the extra zero.
    :param validate_args: whether to validate the parameters and values.
    :raises ValueError: if both or neither of ``gate`` and ``gate_logits`` are given, or the
        base distribution has a nonempty event shape.

    >>> import ember.distributions as dist
    >>> d = ZeroInflatedDistribution(dist.Poisson(torch.tensor(2.0)), gate=torch.tensor(0.5))
    >>> d.log_prob(torch.tensor(0.0)).exp()
    tensor(0.5677)
    """

    arg_constraints = {"gate": constraints.unit_interval, "gate_logits": constraints.real}

    def __init__(
        self,
        base_dist: TorchDistributionMixin,
        *,
        gate: torch.Tensor | None = None,
        gate_logits: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if (gate is None) == (gate_logits is None):
            raise ValueError("Either `gate` or `gate_logits` must be specified, but not both.")
        if base_dist.event_shape:
            raise ValueError(
                "ZeroInflatedDistribution expected empty base_dist.event_shape but got "
                f"{base_dist.event_shape}"
            )
        if gate is not None:
            batch_shape = torch.Size(broadcast_shape(gate.shape, base_dist.batch_shape))
            self.gate = gate.expand(batch_shape)
        else:
            assert gate_logits is not None
            batch_shape = torch.Size(broadcast_shape(gate_logits.shape, base_dist.batch_shape))
            self.gate_logits = gate_logits.expand(batch_shape)
        if base_dist.batch_shape != batch_shape:
            base_dist = base_dist.expand(batch_shape)
        self.base_dist = base_dist
        super().__init__(batch_shape, torch.Size(), validate_args)

    @constraints.dependent_property
    def support(self) -> Any:
        """The base distribution's support."""
        return as_torch(self.base_dist).support

    @lazy_property
    def gate(self) -> torch.Tensor:
        """The probability of the extra zero."""
        result: torch.Tensor = logits_to_probs(self.gate_logits, is_binary=True)
        return result

    @lazy_property
    def gate_logits(self) -> torch.Tensor:
        """The log-odds of the extra zero."""
        result: torch.Tensor = probs_to_logits(self.gate, is_binary=True)
        return result

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log(gate + (1 - gate) p(0))`` at zero, ``log(1 - gate) + log p(value)`` elsewhere."""
        if self._validate_args:
            self._validate_sample(value)
        base = self.base_dist.log_prob(value)
        if "gate" in self.__dict__:
            gate = self.gate
            nonzero = (-gate).log1p() + base
            return torch.where(value == 0, (gate + nonzero.exp()).log(), nonzero)
        logits = self.gate_logits
        # log(1 - gate) - log(gate) + log p(value), and log(gate) = -softplus(-logits).
        ratio = base - logits
        log_gate = -softplus(-logits)
        return torch.where(value == 0, softplus(ratio) + log_gate, ratio + log_gate)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw from the base distribution and zero the draws a ``gate`` coin selects."""
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            mask = torch.bernoulli(self.gate.expand(shape)).bool()
            samples = self.base_dist.expand(shape).sample()
            return torch.where(mask, samples.new_zeros(()), samples)

    @property
    def mean(self) -> torch.Tensor:
        """``(1 - gate) * base mean``."""
        return (1 - self.gate) * self.base_dist.mean

    @property
    def variance(self) -> torch.Tensor:
        """``(1 - gate) (base mean**2 + base variance) - mean**2``."""
        base_mean = self.base_dist.mean
        return (1 - self.gate) * (base_mean**2 + self.base_dist.variance) - self.mean**2

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the gate and the base distribution to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, type(self), _instance)
        shape = torch.Size(batch_shape)
        # Once one parameterization has derived the other lazily both are cached; pass one.
        gate = self.gate.expand(shape) if "gate" in self.__dict__ else None
        logits = None if gate is not None else self.gate_logits.expand(shape)
        ZeroInflatedDistribution.__init__(
            new,
            self.base_dist.expand(shape),
            gate=gate,
            gate_logits=logits,
            validate_args=False,
        )
        new._validate_args = self._validate_args
        return new


class ZeroInflatedPoisson(ZeroInflatedDistribution):
    """A Poisson count with extra zeros of probability ``gate``.

    :param rate: the positive Poisson rate.
    :param gate: the probability of the extra zero.
    :param gate_logits: the log-odds of the extra zero.
    :param validate_args: whether to validate the parameters and values.

    >>> d = ZeroInflatedPoisson(torch.tensor(2.0), gate_logits=torch.tensor(0.0))
    >>> d.mean
    tensor(1.)
    """

    arg_constraints = {
        "rate": constraints.positive,
        "gate": constraints.unit_interval,
        "gate_logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(
        self,
        rate: torch.Tensor | float,
        *,
        gate: torch.Tensor | None = None,
        gate_logits: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        base_dist = Poisson(rate=rate, validate_args=False)
        base_dist._validate_args = bool(validate_args)
        super().__init__(base_dist, gate=gate, gate_logits=gate_logits, validate_args=validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """As :meth:`ZeroInflatedDistribution.log_prob`, with the Poisson term inlined."""
        if "gate" not in self.__dict__:
            return super().log_prob(value)
        if self._validate_args:
            self._validate_sample(value)
        rate, gate = self.rate, self.gate
        # The base's own log_prob would broadcast and check its flag again: about 10% here.
        nonzero = value.xlogy(rate) - rate - (value + 1).lgamma() + (-gate).log1p()
        return torch.where(value == 0, (gate + nonzero.exp()).log(), nonzero)

    @property
    def rate(self) -> torch.Tensor:
        """The Poisson rate."""
        base = self.base_dist
        assert isinstance(base, Poisson)
        return base.rate


class ZeroInflatedNegativeBinomial(ZeroInflatedDistribution):
    """A negative binomial count with extra zeros of probability ``gate``.

    :param total_count: the nonnegative number of failures before stopping.
    :param probs: the success probability, in ``[0, 1)``; or give ``logits``.
    :param logits: the success log-odds.
    :param gate: the probability of the extra zero.
    :param gate_logits: the log-odds of the extra zero.
    :param validate_args: whether to validate the parameters and values.

    >>> d = ZeroInflatedNegativeBinomial(2.0, probs=torch.tensor(0.5), gate=torch.tensor(0.5))
    >>> d.mean
    tensor(1.)
    """

    arg_constraints = {
        "total_count": constraints.greater_than_eq(0),  # type: ignore[no-untyped-call]  # torch: unannotated
        "probs": constraints.half_open_interval(0.0, 1.0),  # type: ignore[no-untyped-call]  # torch: unannotated
        "logits": constraints.real,
        "gate": constraints.unit_interval,
        "gate_logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(
        self,
        total_count: torch.Tensor | float,
        *,
        probs: torch.Tensor | None = None,
        logits: torch.Tensor | None = None,
        gate: torch.Tensor | None = None,
        gate_logits: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        base_dist = NegativeBinomial(
            total_count=total_count, probs=probs, logits=logits, validate_args=False
        )
        base_dist._validate_args = bool(validate_args)
        super().__init__(base_dist, gate=gate, gate_logits=gate_logits, validate_args=validate_args)

    @property
    def _negative_binomial(self) -> NegativeBinomial:
        base = self.base_dist
        assert isinstance(base, NegativeBinomial)
        return base

    @property
    def total_count(self) -> torch.Tensor:
        """The negative binomial's number of failures."""
        return self._negative_binomial.total_count

    @property
    def probs(self) -> torch.Tensor:
        """The negative binomial's success probability."""
        return self._negative_binomial.probs

    @property
    def logits(self) -> torch.Tensor:
        """The negative binomial's success log-odds."""
        return self._negative_binomial.logits

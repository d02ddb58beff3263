"""A negative binomial whose logits carry log-normal multiplicative noise."""

from __future__ import annotations

from typing import Any, Self

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions._common import new_instance
from ember.distributions._params import broadcast_parameters
from ember.distributions.torch import NegativeBinomial
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_shape
from ember.ops.special import get_quad_rule

__all__ = ["LogNormalNegativeBinomial"]


class LogNormalNegativeBinomial(TorchDistribution):
    """``NegativeBinomial(total_count, logits = logits + noise)`` with ``noise ~ Normal(0, s)``.

    The noise is integrated out with ``num_quad_points``-point Gauss-Hermite quadrature, so
    ``log_prob`` is approximate (exact as the number of points grows). Sampling is not
    implemented, as in Pyro.

    :param total_count: the nonnegative number of failures.
    :param logits: the log-odds before noise.
    :param multiplicative_noise_scale: the positive standard deviation ``s`` of the noise.
    :param num_quad_points: the number of quadrature points.
    :param validate_args: whether to validate the parameters and values.
    :raises ValueError: if ``num_quad_points < 1``.

    >>> d = LogNormalNegativeBinomial(torch.tensor(3.0), torch.tensor(0.0), torch.tensor(1e-4))
    >>> d.log_prob(torch.tensor(0.0)).exp()
    tensor(0.1250)
    """

    arg_constraints = {
        "total_count": constraints.greater_than_eq(0),  # type: ignore[no-untyped-call]  # torch: unannotated
        "logits": constraints.real,
        "multiplicative_noise_scale": constraints.positive,
    }
    support = constraints.nonnegative_integer

    def __init__(
        self,
        total_count: torch.Tensor | float,
        logits: torch.Tensor | float,
        multiplicative_noise_scale: torch.Tensor | float,
        *,
        num_quad_points: int = 8,
        validate_args: bool | None = None,
    ) -> None:
        if num_quad_points < 1:
            raise ValueError("num_quad_points must be positive.")
        total_count, logits, noise_scale = broadcast_parameters(
            type(self).__name__,
            total_count=total_count,
            logits=logits,
            multiplicative_noise_scale=multiplicative_noise_scale,
        )
        self.quad_points, self.log_weights = get_quad_rule(num_quad_points, logits)
        quad_logits = logits.unsqueeze(-1) + noise_scale.unsqueeze(-1) * self.quad_points
        self.nb_dist = NegativeBinomial(total_count=total_count.unsqueeze(-1), logits=quad_logits)
        self.multiplicative_noise_scale = noise_scale
        self.total_count = total_count
        self.logits = logits
        self.num_quad_points = num_quad_points
        batch_shape = broadcast_shape(noise_scale.shape, self.nb_dist.batch_shape[:-1])
        super().__init__(torch.Size(batch_shape), torch.Size(), validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The quadrature estimate of the log probability of ``value``."""
        if self._validate_args:
            self._validate_sample(value)
        nb_log_prob = self.nb_dist.log_prob(value.unsqueeze(-1))
        return torch.logsumexp(self.log_weights + nb_log_prob, dim=-1)

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Not implemented (as in Pyro)."""
        raise NotImplementedError("LogNormalNegativeBinomial does not implement sample")

    def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
        """Expand the parameters to ``batch_shape``.

        :param batch_shape: the new batch shape.
        :param _instance: a pre-allocated instance, used by subclasses' ``expand``.
        """
        new: Self = new_instance(self, type(self), _instance)
        shape = torch.Size(batch_shape)
        LogNormalNegativeBinomial.__init__(
            new,
            self.total_count.expand(shape),
            self.logits.expand(shape),
            self.multiplicative_noise_scale.expand(shape),
            num_quad_points=self.num_quad_points,
            validate_args=False,
        )
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        """``exp(logits + log(total_count) + s**2 / 2)``."""
        scale = self.multiplicative_noise_scale
        return torch.exp(self.logits + self.total_count.log() + 0.5 * scale.pow(2.0))

    @property
    def variance(self) -> torch.Tensor:
        """``mean + (exp(s**2) (1 + 1/total_count) - 1) mean**2``."""
        kappa = torch.exp(self.multiplicative_noise_scale.pow(2.0)) * (1 + 1 / self.total_count) - 1
        return self.mean + kappa * self.mean.pow(2.0)

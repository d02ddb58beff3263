"""The empirical distribution of a weighted set of samples."""

from __future__ import annotations

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions.torch import Categorical
from ember.distributions.torch_distribution import TorchDistribution

__all__ = ["Empirical"]

_DISCRETE_DTYPES = (torch.int32, torch.int64)


class Empirical(TorchDistribution):
    """A discrete distribution over the rows of ``samples`` with weights ``exp(log_weights)``.

    ``log_weights`` has shape ``batch_shape + (num_samples,)`` and ``samples`` has shape
    ``batch_shape + (num_samples,) + event_shape``; the weights need not be normalized.
    ``log_prob`` sums the probabilities of the rows equal to ``value``.

    :param samples: the support points.
    :param log_weights: their unnormalized log weights.
    :param validate_args: whether to check ``value`` shapes in ``log_prob``.
    :raises ValueError: if ``log_weights.shape`` is not the leading part of ``samples.shape``.

    >>> d = Empirical(torch.tensor([0.0, 1.0, 1.0]), torch.zeros(3))
    >>> d.log_prob(torch.tensor(1.0)).exp(), d.mean
    (tensor(0.6667), tensor(0.6667))
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real
    has_enumerate_support = True

    def __init__(
        self,
        samples: torch.Tensor,
        log_weights: torch.Tensor,
        validate_args: bool | None = None,
    ) -> None:
        self._samples = samples
        self._log_weights = log_weights
        sample_shape, weight_shape = samples.shape, log_weights.shape
        if len(weight_shape) > len(sample_shape) or weight_shape != sample_shape[
            : len(weight_shape)
        ] or not weight_shape:
            raise ValueError(
                f"Empirical: the shape of ``log_weights`` ({weight_shape}) must match "
                f"the leftmost shape of ``samples`` ({sample_shape})"
            )
        self._aggregation_dim = log_weights.dim() - 1
        self._categorical = Categorical(logits=log_weights)
        super().__init__(
            batch_shape=weight_shape[:-1],
            event_shape=sample_shape[len(weight_shape) :],
            validate_args=validate_args,
        )

    @property
    def sample_size(self) -> int:
        """The number of weighted samples, over all batch elements."""
        return self._log_weights.numel()

    @property
    def log_weights(self) -> torch.Tensor:
        """The unnormalized log weights."""
        return self._log_weights

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw rows of ``samples`` with probability proportional to their weights."""
        shape = torch.Size(sample_shape)
        index = self._categorical.sample(shape)  # shape + batch_shape
        event_dims = len(self.event_shape)
        index = index.reshape(index.shape + (1,) + (1,) * event_dims)
        index = index.expand(shape + self.batch_shape + (1,) + self.event_shape)
        rows = self._samples.expand(shape + self._samples.shape)
        return rows.gather(len(shape) + self._aggregation_dim, index).squeeze(
            len(shape) + self._aggregation_dim
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The log of the total weight of rows equal to ``value`` (``-inf`` if none).

        :raises ValueError: with validation on, if ``value.shape`` is not
            ``batch_shape + event_shape``.
        """
        expected = self.batch_shape + self.event_shape
        if self._validate_args and value.shape != expected:
            raise ValueError(
                f"Empirical.log_prob: ``value.shape`` must be {expected}, got {value.shape}"
            )
        if self.batch_shape:
            value = value.unsqueeze(self._aggregation_dim)
        matches = self._samples.eq(value)
        if self.event_shape:
            matches = matches.flatten(-len(self.event_shape)).all(-1)
        probs = self._categorical.probs
        return (probs * matches.to(probs.dtype)).sum(-1).log()

    def _weighted_mean(self, value: torch.Tensor) -> torch.Tensor:
        extra = value.dim() - self._log_weights.dim()
        weights = self._log_weights.reshape(self._log_weights.shape + (1,) * extra)
        dim = self._aggregation_dim
        relative = (weights - weights.max(dim=dim, keepdim=True)[0]).exp()
        return (value * relative).sum(dim) / relative.sum(dim)

    def _check_continuous(self, moment: str) -> None:
        if self._samples.dtype in _DISCRETE_DTYPES:
            raise ValueError(
                f"{moment} for discrete empirical distribution undefined. Consider converting "
                "samples to ``torch.float32`` or ``torch.float64``. If these are samples from a "
                "`Categorical` distribution, consider converting to a `OneHotCategorical` "
                "distribution."
            )

    @property
    def mean(self) -> torch.Tensor:
        """The weighted mean of the samples.

        :raises ValueError: for integer samples.
        """
        self._check_continuous("Mean")
        return self._weighted_mean(self._samples)

    @property
    def variance(self) -> torch.Tensor:
        """The weighted variance of the samples.

        :raises ValueError: for integer samples.
        """
        self._check_continuous("Variance")
        mean = self.mean.unsqueeze(self._aggregation_dim)
        return self._weighted_mean((self._samples - mean) ** 2)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The samples themselves, as in Pyro.

        :param expand: unused.
        """
        return self._samples

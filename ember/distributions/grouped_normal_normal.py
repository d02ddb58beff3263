"""Grouped normal observations with normal group means integrated out."""

from __future__ import annotations

import math
from typing import Any, NoReturn

import torch
from torch.distributions import constraints
from torch.types import _size

from ember.distributions.torch import Normal
from ember.distributions.torch_distribution import TorchDistribution
from ember.distributions.util import broadcast_all

__all__ = ["GroupedNormalNormal"]

_LOG_ROOT_TWO_PI = 0.5 * math.log(2.0 * math.pi)


class GroupedNormalNormal(TorchDistribution):
    """The marginal likelihood of ``y_i ~ Normal(mu[group_idx[i]], obs_scale_i)``, ``mu_g ~ Normal(prior_loc_g, prior_scale_g)``.

    The group means are integrated out analytically, so ``log_prob`` scores a whole vector of
    observations (of the shape of ``group_idx``) at once; :meth:`get_posterior` returns the
    posterior over the group means. The batch shape is always empty; sampling is not
    implemented, as in Pyro.

    :param prior_loc: the prior means, one per group (or a scalar).
    :param prior_scale: the positive prior scales, one per group (or a scalar).
    :param obs_scale: the positive observation scales, one per observation (or a scalar).
    :param group_idx: a 1-dimensional long tensor of group indices.
    :param validate_args: whether to validate the parameters and values.
    :raises ValueError: if the shapes or indices are invalid.

    >>> d = GroupedNormalNormal(torch.zeros(2), torch.ones(2), torch.tensor(1.0), torch.tensor([0, 1]))
    >>> d.log_prob(torch.zeros(2))
    tensor(-2.5310)
    """

    arg_constraints = {
        "prior_loc": constraints.real,
        "prior_scale": constraints.positive,
        "obs_scale": constraints.positive,
    }
    support = constraints.real

    def __init__(
        self,
        prior_loc: torch.Tensor,
        prior_scale: torch.Tensor,
        obs_scale: torch.Tensor,
        group_idx: torch.Tensor,
        validate_args: bool | None = None,
    ) -> None:
        if prior_loc.dim() not in (0, 1) or prior_scale.dim() not in (0, 1):
            raise ValueError(
                "GroupedNormalNormal: prior_loc and prior_scale must be broadcastable to 1D "
                f"tensors of the same shape, got shapes {tuple(prior_loc.shape)} and "
                f"{tuple(prior_scale.shape)}."
            )
        if obs_scale.dim() not in (0, 1):
            raise ValueError(
                "GroupedNormalNormal: obs_scale must be broadcastable to a 1-dimensional "
                f"tensor, got shape {tuple(obs_scale.shape)}."
            )
        if group_idx.dim() != 1 or group_idx.dtype != torch.long:
            raise ValueError(
                "GroupedNormalNormal: group_idx must be a 1-dimensional tensor of indices, got "
                f"shape {tuple(group_idx.shape)} and dtype {group_idx.dtype}."
            )
        prior_loc, prior_scale = broadcast_all(prior_loc, prior_scale)
        obs_scale, group_idx = broadcast_all(obs_scale, group_idx)
        self.prior_loc, self.prior_scale = prior_loc, prior_scale
        self.obs_scale, self.group_idx = obs_scale, group_idx
        batch_shape = prior_loc.shape[:-1]
        if batch_shape != torch.Size():
            raise ValueError("GroupedNormalNormal only supports trivial batch_shape's.")
        self.num_groups = prior_loc.size(0)
        if int(group_idx.min()) < 0 or int(group_idx.max()) >= self.num_groups:
            raise ValueError(
                "GroupedNormalNormal: each index in group_idx must be an integer in the "
                f"inclusive range [0, prior_loc.size(0) - 1] = [0, {self.num_groups - 1}]."
            )
        self.num_data_per_batch = self._group_sum(prior_loc.new_ones(group_idx.shape))
        super().__init__(batch_shape, validate_args=validate_args)

    def _group_sum(self, values: torch.Tensor) -> torch.Tensor:
        return self.prior_loc.new_zeros(self.num_groups).scatter_add(0, self.group_idx, values)

    def expand(self, batch_shape: _size, _instance: Any = None) -> NoReturn:
        """Not supported: the batch shape is always empty.

        :raises NotImplementedError: always.
        """
        raise NotImplementedError("GroupedNormalNormal does not support expand")

    def sample(self, sample_shape: _size = torch.Size()) -> NoReturn:
        """Not implemented (as in Pyro).

        :raises NotImplementedError: always.
        """
        raise NotImplementedError("GroupedNormalNormal does not implement sample")

    def _check_value(self, value: torch.Tensor, method: str) -> None:
        if value.shape != self.group_idx.shape:
            raise ValueError(
                f"GroupedNormalNormal.{method} only supports values that have the same shape as "
                f"group_idx: got {tuple(value.shape)} vs {tuple(self.group_idx.shape)}."
            )

    def get_posterior(self, value: torch.Tensor) -> Normal:
        """The posterior over the group means given observations ``value``.

        :param value: observations, of the shape of ``group_idx``.
        :raises ValueError: if ``value`` has another shape.
        """
        self._check_value(value, "get_posterior")
        obs_precision = self.obs_scale.pow(-2)
        precision = self.prior_scale.pow(-2) + self._group_sum(obs_precision)
        weighted = self._group_sum(value * obs_precision) + self.prior_loc * self.prior_scale.pow(-2)
        return Normal(loc=weighted / precision, scale=precision.rsqrt())

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The marginal log density of all observations, a scalar.

        :raises ValueError: if ``value`` is not of the shape of ``group_idx``.
        """
        if self._validate_args:
            self._validate_sample(value)
        self._check_value(value, "log_prob")
        prior_var = self.prior_scale.pow(2.0)
        obs_precision = self.obs_scale.pow(-2)
        ratio = prior_var * self._group_sum(obs_precision)
        delta = value - self.prior_loc[self.group_idx]
        scaled_delta = delta * obs_precision
        scaled_delta_sum = self._group_sum(scaled_delta)
        # The matrix determinant lemma and Woodbury identity, group by group.
        return (
            -(self.num_data_per_batch * _LOG_ROOT_TWO_PI).sum()
            - 0.5 * torch.log1p(ratio).sum()
            - self.obs_scale.log().sum()
            - 0.5 * torch.dot(delta, scaled_delta)
            + 0.5 * (prior_var * scaled_delta_sum.pow(2) / (1.0 + ratio)).sum()
        )

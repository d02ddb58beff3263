"""KL divergences: a typed entry point, and Ember's pairs registered with torch's dispatcher.

Importing :mod:`ember.distributions` registers them. :func:`kl_divergence` dispatches through
torch's registry, so pairs registered with :func:`~torch.distributions.register_kl` work too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.distributions import register_kl

from ember.distributions.delta import Delta
from ember.distributions.torch import MultivariateNormal, Normal
from ember.distributions.torch_distribution import (
    Independent,
    MaskedDistribution,
    TorchDistributionMixin,
)
from ember.distributions.util import broadcast_shape, scale_and_mask, sum_rightmost

__all__ = ["kl_divergence"]


def kl_divergence(
    p: torch.distributions.Distribution | TorchDistributionMixin,
    q: torch.distributions.Distribution | TorchDistributionMixin,
) -> torch.Tensor:
    """Compute ``KL(p || q)`` with torch's registry, batched over the batch shape.

    This is :func:`torch.distributions.kl_divergence`, typed to accept what Ember's
    ``to_event``, ``mask`` and ``expand_by`` return.

    :param p: the first distribution.
    :param q: the second distribution.
    :raises NotImplementedError: if no KL is registered for the pair of types.

    >>> import ember.distributions as dist
    >>> kl_divergence(dist.Normal(0.0, 1.0), dist.Normal(1.0, 1.0))
    tensor(0.5000)
    """
    # torch annotates only its own base class; every Ember distribution is one at runtime
    result: torch.Tensor = torch.distributions.kl_divergence(p, q)  # type: ignore[arg-type]
    return result


def _kl_delta(p: Delta, q: torch.distributions.Distribution) -> torch.Tensor:
    return -q.log_prob(p.v)


def _kl_independent_independent(p: Independent, q: Independent) -> torch.Tensor:
    shared = min(p.reinterpreted_batch_ndims, q.reinterpreted_batch_ndims)
    p_base: Any = p.base_dist
    q_base: Any = q.base_dist
    if p.reinterpreted_batch_ndims > shared:
        p_base = Independent(p_base, p.reinterpreted_batch_ndims - shared)
    if q.reinterpreted_batch_ndims > shared:
        q_base = Independent(q_base, q.reinterpreted_batch_ndims - shared)
    return sum_rightmost(kl_divergence(p_base, q_base), shared)


def _kl_independent_mvn(p: Independent, q: MultivariateNormal) -> torch.Tensor:
    base = p.base_dist
    if p.reinterpreted_batch_ndims != 1:
        raise NotImplementedError("KL(Independent || MultivariateNormal) needs one event dim")
    if isinstance(base, Delta):
        return -q.log_prob(base.v)
    if isinstance(base, Normal):
        # KL of a diagonal normal: 0.5 tr(Q^-1 S) - log q(mean) - entropy of a unit-free part.
        size = q.event_shape[0]
        variance, precision = base.scale**2, q.precision_matrix.diagonal(dim1=-2, dim2=-1)
        trace = 0.5 * (variance * precision).sum(-1)
        constant = 0.5 * size * (1 + math.log(2 * math.pi))
        result: torch.Tensor = trace - constant - q.log_prob(base.loc) - base.scale.log().sum(-1)
        return result
    raise NotImplementedError(f"KL(Independent({type(base).__name__}) || MultivariateNormal)")


def _kl_masked_masked(p: MaskedDistribution, q: MaskedDistribution) -> torch.Tensor:
    if p._mask is False or q._mask is False:
        # Pyro returns the float 0.0 here; a tensor keeps the result's type and shape.
        return torch.zeros(broadcast_shape(p.batch_shape, q.batch_shape))
    if p._mask is True:
        mask = q._mask
    elif q._mask is True or p._mask is q._mask:
        mask = p._mask
    else:
        mask = p._mask & q._mask
    kl = kl_divergence(p.base_dist, q.base_dist)
    return kl if mask is True else scale_and_mask(kl, mask=mask)


def _register(type_p: type, type_q: type, fn: Callable[..., Any]) -> None:
    register_kl(type_p, type_q)(fn)  # type: ignore[no-untyped-call]  # torch: unannotated


_register(Delta, torch.distributions.Distribution, _kl_delta)
_register(Independent, Independent, _kl_independent_independent)
_register(Independent, MultivariateNormal, _kl_independent_mvn)
_register(MaskedDistribution, MaskedDistribution, _kl_masked_masked)

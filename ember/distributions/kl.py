"""KL divergences for Ember's own distribution classes, registered with torch's dispatcher.

Importing :mod:`ember.distributions` registers them; use
:func:`~torch.distributions.kl_divergence` (re-exported as
``ember.distributions.kl_divergence``) to compute them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.distributions import kl_divergence, register_kl

from ember.distributions.delta import Delta
from ember.distributions.torch_distribution import Independent, MaskedDistribution
from ember.distributions.util import scale_and_mask, sum_rightmost

__all__: list[str] = []


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


def _kl_masked_masked(p: MaskedDistribution, q: MaskedDistribution) -> torch.Tensor | float:
    if p._mask is False or q._mask is False:
        return 0.0  # a float: there is no tensor to take a device from
    if p._mask is True:
        mask = q._mask
    elif q._mask is True or p._mask is q._mask:
        mask = p._mask
    else:
        mask = p._mask & q._mask
    kl = kl_divergence(p.base_dist, q.base_dist)  # type: ignore[arg-type]  # torch wants its base class
    return kl if mask is True else scale_and_mask(kl, mask=mask)


def _register(type_p: type, type_q: type, fn: Callable[..., Any]) -> None:
    register_kl(type_p, type_q)(fn)  # type: ignore[no-untyped-call]  # torch: unannotated


_register(Delta, torch.distributions.Distribution, _kl_delta)
_register(Independent, Independent, _kl_independent_independent)
_register(MaskedDistribution, MaskedDistribution, _kl_masked_masked)

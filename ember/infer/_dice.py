"""The DiCE estimator over packed traces: expected costs weighted by the guide's sampling factors.

Public under :mod:`ember.infer.util` (Pyro's ``pyro.infer.util.Dice``, ``compute_site_dice_factor``
and ``LAST_CACHE_SIZE``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from opt_einsum import shared_intermediates
from opt_einsum.sharing import count_cached_ops

from ember.distributions.util import is_identically_zero
from ember.ops import packed
from ember.ops.einsum.adjoint import require_backward
from ember.ops.rings import MarginalRing
from ember.poutine.message import Message
from ember.poutine.trace_struct import Trace

__all__ = ["LAST_CACHE_SIZE", "Dice", "compute_site_dice_factor"]

#: The number of cached contraction ops of the last :meth:`Dice.compute_expectation`, by op
#: (for profiling): a one-element list holding a :class:`collections.Counter`.
LAST_CACHE_SIZE: list[Counter[str]] = [Counter()]

Ordinal = frozenset[str]


def _with_dims(value: torch.Tensor, dims: str) -> torch.Tensor:
    value._pyro_dims = dims  # type: ignore[attr-defined]  # packed tensors carry their dim names, as in Pyro
    return value


def _dims(value: Any) -> str:
    dims: str = getattr(value, "_pyro_dims", "")
    return dims


def compute_site_dice_factor(site: Message) -> tuple[torch.Tensor | float, float]:
    """A guide site's DiCE factor and the log of how often its ordinal is counted.

    Sampled sites contribute ``log q - stop_grad(log q)`` of their score function;
    locally multiply sampled sites also ``-log num_samples``; sequentially enumerated
    sites are counted once per value, so they return ``log(number of values)``.

    :param site: a packed guide sample site.
    :returns: ``(log_factor, log_denominator)``.
    """
    log_denom = 0.0
    log_prob: Any = site["packed"]["score_parts"].score_function  # not scaled by subsampling
    dims = _dims(log_prob)
    enumerate_ = site["infer"].get("enumerate")
    if enumerate_:
        num_samples = site["infer"].get("num_samples")
        if num_samples is not None:
            if not is_identically_zero(log_prob):
                log_prob = log_prob - log_prob.detach()
            log_prob = log_prob - math.log(num_samples)
            if not isinstance(log_prob, torch.Tensor):
                log_prob = torch.tensor(float(log_prob), device=site["value"].device)
            _with_dims(log_prob, dims)
            # Broadcast to the site's own dims, so its factor spans its sample dim.
            log_prob, _ = packed.broadcast_all(log_prob, site["packed"]["log_prob"])
        elif enumerate_ == "sequential":
            log_denom = math.log(site["infer"].get("_enum_total") or 1)
    elif not is_identically_zero(log_prob):
        log_prob = _with_dims(log_prob - log_prob.detach(), dims)
    return log_prob, log_denom


def _fulldot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    assert x.dim() == y.dim()
    if x.dim() == 0:
        return x * y
    result: torch.Tensor = torch.tensordot(x, y, dims=x.dim())
    return result


class Dice:
    """The DiCE operator: a differentiable expectation of costs under the guide's sampling.

    Handles scales from subsampling, independence across plates (a cost at an ordinal is
    weighted only by the factors of the ordinals it is nested in), parallel and sequential
    enumeration, and local multiple sampling. Assumes that no variable outside a plate
    depends on one inside it.

    :param guide_trace: a packed guide trace.
    :param ordering: each site's ordinal (the frozenset of its plates' symbols).
    """

    def __init__(self, guide_trace: Trace, ordering: Mapping[str, Ordinal]) -> None:
        log_denoms: defaultdict[Ordinal, float] = defaultdict(float)
        log_probs: defaultdict[Ordinal, list[torch.Tensor]] = defaultdict(list)
        for name, site in guide_trace.nodes.items():
            if site["type"] != "sample":
                continue
            ordinal = ordering[name]
            log_prob, log_denom = compute_site_dice_factor(site)
            if not is_identically_zero(log_prob):
                assert isinstance(log_prob, torch.Tensor)
                log_probs[ordinal].append(log_prob)
            if not is_identically_zero(log_denom):
                log_denoms[ordinal] += log_denom
        self.log_denom = log_denoms
        self.log_probs = log_probs

    def _get_log_factors(self, target_ordinal: Ordinal) -> list[torch.Tensor | float]:
        """The DiCE log factors that weigh a cost at ``target_ordinal``."""
        log_denom = 0.0
        for ordinal, term in self.log_denom.items():
            if not ordinal <= target_ordinal:  # counted once per value of an unrelated site
                log_denom += term
        log_factors: list[torch.Tensor | float] = [] if is_identically_zero(log_denom) else [-log_denom]
        for ordinal, terms in self.log_probs.items():
            if ordinal <= target_ordinal:
                log_factors.extend(terms)
        return log_factors

    def compute_expectation(self, costs: Mapping[Ordinal, Sequence[torch.Tensor]]) -> torch.Tensor | float:
        """The differentiable expected total cost.

        :param costs: packed cost tensors, by ordinal.
        """
        with shared_intermediates() as cache:
            ring = MarginalRing(cache=cache)
            expected_cost: torch.Tensor | float = 0.0
            for ordinal, cost_terms in costs.items():
                all_factors = self._get_log_factors(ordinal)
                scale = math.exp(sum(x for x in all_factors if not isinstance(x, torch.Tensor)))
                log_factors = [x for x in all_factors if isinstance(x, torch.Tensor)]

                # One marginal query per distinct set of cost dims; reuse a factor with those dims.
                queries: dict[frozenset[str], torch.Tensor | None] = {frozenset(_dims(c)): None for c in cost_terms}
                for log_factor in log_factors:
                    key = frozenset(_dims(log_factor))
                    if key in queries and queries[key] is None:
                        queries[key] = log_factor
                for cost in cost_terms:
                    key = frozenset(_dims(cost))
                    if queries[key] is None:
                        zeros = _with_dims(torch.zeros_like(cost), _dims(cost))
                        log_factors.append(zeros)
                        queries[key] = zeros

                # Plates are never product-contracted here: the ordinals already separate them.
                sum_dims = set().union(*(_dims(x) for x in log_factors)) - ordinal
                for query in queries.values():
                    assert query is not None
                    require_backward(query)
                root = ring.sumproduct(log_factors, sum_dims)
                getattr(root, "_pyro_backward")()
                probs = {
                    key: getattr(query, "_pyro_backward_result").exp() for key, query in queries.items() if query is not None
                }

                for cost_term in cost_terms:
                    cost = cost_term
                    key = frozenset(_dims(cost))
                    prob = probs[key]
                    query_dims = _dims(queries[key])
                    _with_dims(prob, query_dims)
                    mask = prob > 0
                    if torch._C._get_tracing_state() or not mask.all():
                        _with_dims(mask, query_dims)
                        cost, prob, mask = packed.broadcast_all(cost, prob, mask)
                        prob = prob.masked_select(mask)
                        cost = cost.masked_select(mask)
                    else:
                        cost, prob = packed.broadcast_all(cost, prob)
                    expected_cost = expected_cost + scale * _fulldot(prob, cost)
        LAST_CACHE_SIZE[0] = count_cached_ops(cache)
        return expected_cost

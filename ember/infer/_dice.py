"""The DiCE estimator over packed guide traces (exported by :mod:`ember.infer.util`).

DiCE turns a surrogate ``sum_k p_k * cost_k`` into an estimator whose value is the expected
cost and whose gradients (of any order) are unbiased: each Monte Carlo site contributes a
factor ``exp(log q - log q.detach())`` (one in value, the score function in gradient), each
enumerated site its exact probabilities, and a plate's sites count only for costs inside
that plate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping
from typing import Any

import opt_einsum
import torch

from ember.distributions.util import is_identically_zero
from ember.ops import packed
from ember.ops._dims import dims_of, named
from ember.ops.einsum.adjoint import require_backward
from ember.ops.rings import MarginalRing
from ember.poutine.message import Message
from ember.poutine.trace_struct import Trace

__all__ = ["Dice", "compute_site_dice_factor"]


def compute_site_dice_factor(site: Message) -> tuple[torch.Tensor | float, float]:
    """A packed guide site's DiCE log factor and its log denominator.

    Monte Carlo sites give ``log q - log q.detach()`` (zero for reparameterized sites); sites
    enumerated with ``num_samples`` (local multiple sampling) give that minus
    ``log(num_samples)``; sequentially enumerated sites give a log denominator
    ``log(number of values)`` instead, which keeps their costs from being counted once per
    value.

    :param site: a sample site of a trace after ``compute_score_parts`` and ``pack_tensors``.
    :returns: ``(log_factor, log_denominator)``.
    """
    infer: Any = site["infer"]
    packed_site: Any = site["packed"]
    log_prob: Any = packed_site["score_parts"].score_function  # unscaled by subsampling
    dims: str = getattr(log_prob, "_pyro_dims", "")
    log_denom = 0.0
    enumerate = infer.get("enumerate")
    if enumerate:
        num_samples = infer.get("num_samples")
        if num_samples is not None:
            if not is_identically_zero(log_prob):
                log_prob = log_prob - log_prob.detach()
            log_prob = log_prob - math.log(num_samples)
            if not isinstance(log_prob, torch.Tensor):
                value: torch.Tensor = site["value"]
                log_prob = torch.tensor(float(log_prob), device=value.device)
            named(log_prob, dims)
            # Spread the factor over every dim of the site's log density (its sample dim).
            log_prob, _ = packed.broadcast_all(log_prob, packed_site["log_prob"])
        elif enumerate == "sequential":
            log_denom = math.log(infer.get("_enum_total", num_samples))
    elif not is_identically_zero(log_prob):
        log_prob = named(log_prob - log_prob.detach(), dims)
    return log_prob, log_denom


def _fulldot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    assert x.dim() == y.dim()
    return x * y if x.dim() == 0 else torch.tensordot(x, y, dims=x.dim())


class Dice:
    """The DiCE operator over a guide trace, aware of plates, subsampling and enumeration.

    Assumes that no variable outside a plate depends on a variable inside it.

    :param guide_trace: a guide trace after ``compute_score_parts`` and ``pack_tensors``.
    :param ordering: the ordinal of each sample site (any hashable, ``<=``-comparable values;
        usually the frozenset of the site's plates).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> p = torch.tensor(0.3, requires_grad=True)
    >>> tr = poutine.trace(lambda: ember.sample("z", dist.Bernoulli(p))).get_trace()
    >>> tr.compute_score_parts(); tr.pack_tensors()
    >>> z = tr.nodes["z"]["value"]
    >>> cost = 2 * z; cost._pyro_dims = ""
    >>> expected = Dice(tr, {"z": frozenset()}).compute_expectation({frozenset(): [cost]})
    >>> bool(expected == 2 * z), bool(expected.requires_grad)
    (True, True)
    """

    def __init__(self, guide_trace: Trace, ordering: Mapping[str, Any]) -> None:
        # Sequential enumeration repeats the downstream computation once per value.
        log_denoms: defaultdict[Hashable, float] = defaultdict(float)
        log_probs: defaultdict[Hashable, list[torch.Tensor]] = defaultdict(list)
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

    def _get_log_factors(self, target_ordinal: Any) -> list[torch.Tensor | float]:
        """The DiCE log factors of costs at ``target_ordinal``: upstream sites' factors and
        minus the log denominators of sites not upstream of it."""
        log_denom = 0.0
        for ordinal, term in self.log_denom.items():
            if not ordinal <= target_ordinal:
                log_denom += term
        factors: list[torch.Tensor | float] = [] if is_identically_zero(log_denom) else [-log_denom]
        for ordinal, terms in self.log_probs.items():
            if ordinal <= target_ordinal:
                factors.extend(terms)
        return factors

    def compute_expectation(self, costs: Mapping[Any, list[torch.Tensor]]) -> torch.Tensor | float:
        """The differentiable expected cost: the sum over ordinals of the marginal
        probability of each cost's dims times the cost.

        :param costs: packed cost tensors, by ordinal.
        :returns: a scalar.
        """
        expected: torch.Tensor | float = 0.0
        with opt_einsum.shared_intermediates() as cache:
            ring = MarginalRing(cache=cache)
            for ordinal, cost_terms in costs.items():
                all_factors = self._get_log_factors(ordinal)
                scale = math.exp(sum(x for x in all_factors if not isinstance(x, torch.Tensor)))
                log_factors = [x for x in all_factors if isinstance(x, torch.Tensor)]

                # One query per distinct set of cost dims: a factor with exactly those dims if
                # there is one, else a zero tensor shaped like the cost.
                queries: dict[frozenset[str], torch.Tensor | None] = {frozenset(dims_of(c)): None for c in cost_terms}
                for factor in log_factors:
                    key = frozenset(dims_of(factor))
                    if key in queries and queries[key] is None:
                        queries[key] = factor
                for cost in cost_terms:
                    key = frozenset(dims_of(cost))
                    if queries[key] is None:
                        query = named(torch.zeros_like(cost), dims_of(cost))
                        log_factors.append(query)
                        queries[key] = query

                # Plates are never product-contracted: dependencies follow plate order.
                sum_dims = set().union(*(dims_of(x) for x in log_factors)) - set(ordinal)
                for leaf in queries.values():
                    assert leaf is not None
                    require_backward(leaf)
                root: Any = ring.sumproduct(log_factors, sum_dims)
                root._pyro_backward()
                probs: dict[frozenset[str], torch.Tensor] = {}
                for key, leaf in queries.items():
                    result: Any = leaf
                    probs[key] = named(result._pyro_backward_result.exp(), dims_of(result))

                for cost in cost_terms:
                    prob = probs[frozenset(dims_of(cost))]
                    mask = prob > 0
                    if torch._C._get_tracing_state() or not bool(mask.all()):
                        named(mask, dims_of(prob))
                        cost, prob, mask = packed.broadcast_all(cost, prob, mask)
                        prob, cost = prob.masked_select(mask), cost.masked_select(mask)
                    else:
                        cost, prob = packed.broadcast_all(cost, prob)
                    expected = expected + scale * _fulldot(prob, cost)
        return expected

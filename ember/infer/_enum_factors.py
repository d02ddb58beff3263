"""What the enumerating ELBOs read off a packed model/guide trace pair.

Each model site is sorted into a *cost* (scored as usual) or a *log factor* (a site
enumerated in the model, or a site whose density depends on one); the log factors are
summed out by a plated sum-product. Also here: the checks on enumeration that only the
pair can show, the marginals :meth:`TraceEnum_ELBO.compute_marginals` returns, and the
backward sampler of :meth:`TraceEnum_ELBO.sample_posterior`.
"""

from __future__ import annotations

from collections import OrderedDict
from types import TracebackType
from typing import Any

import torch
from opt_einsum import shared_intermediates

from ember._util import ignore_jit_warnings, warn_at_caller
from ember.distributions.torch_discrete import Bernoulli
from ember.ops import packed
from ember.ops.contract import contract_to_tensor
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.trace_struct import Trace

__all__ = [
    "BackwardSampleMessenger",
    "ModelFactors",
    "check_model_guide_enumeration_constraint",
    "check_tmc_elbo_constraint",
    "compute_marginals",
    "compute_model_factors",
    "find_ordinal",
]

Ordinal = frozenset[str]


def _dims(value: Any) -> str:
    dims: str = getattr(value, "_pyro_dims", "")
    return dims


def find_ordinal(tr: Trace, site: Message) -> Ordinal:
    """The symbols of the vectorized plates around ``site``."""
    return frozenset(tr.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized)


def _get_common_scale(scales: list[Any]) -> Any:
    # Compared by value, as floats: the scales of all enumerated sites must agree.
    distinct = set()
    with ignore_jit_warnings():
        for scale in scales:
            if isinstance(scale, torch.Tensor) and scale.dim():
                raise ValueError("enumeration only supports scalar poutine.scale")
            distinct.add(float(scale))
    if len(distinct) != 1:
        raise ValueError(
            "Expected all enumerated sample sites to share a common poutine.scale, "
            f"but found {len(distinct)} different scales."
        )
    return scales[0]


def check_model_guide_enumeration_constraint(
    model_enum_sites: OrderedDict[Ordinal, list[Message]], guide_trace: Trace
) -> None:
    """Raise ``ValueError`` where a guide-enumerated site sits in a plate a model enumeration crosses."""
    min_ordinal = frozenset.intersection(*model_enum_sites)
    for name, site in guide_trace.nodes.items():
        if site["type"] == "sample" and site["infer"].get("_enumerate_dim") is not None:
            for f in site["cond_indep_stack"]:
                if f.vectorized and guide_trace.plate_to_symbol[f.name] not in min_ordinal:
                    raise ValueError(
                        "Expected model enumeration to be no more global than guide enumeration, "
                        f"but found model enumeration sites upstream of guide site '{name}' in plate('{f.name}'). "
                        "Try converting some model enumeration sites to guide enumeration sites."
                    )


def check_tmc_elbo_constraint(model_trace: Trace, guide_trace: Trace) -> None:
    """Warn about local multiple sampling that makes TraceEnum_ELBO's estimate biased."""
    num_samples = frozenset(
        site["infer"].get("num_samples")
        for site in guide_trace.nodes.values()
        if site["type"] == "sample"
        and site["infer"].get("enumerate") == "parallel"
        and site["infer"].get("num_samples") is not None
    )
    if len(num_samples) > 1:
        warn_at_caller(
            "Using different numbers of Monte Carlo samples for different guide sites in TraceEnum_ELBO.\n"
            "This may be biased if the guide is not factorized",
            UserWarning,
        )
    for name, site in model_trace.nodes.items():
        if (
            site["type"] == "sample"
            and site["infer"].get("enumerate") == "parallel"
            and site["infer"].get("num_samples")
            and name not in guide_trace
        ):
            warn_at_caller(
                f"Site {site['name']} is multiply sampled in model,\n"
                "expect incorrect gradient estimates from TraceEnum_ELBO.\n"
                "Consider using exact enumeration or guide sampling if possible.",
                RuntimeWarning,
            )


class ModelFactors:
    """A trace pair split for enumeration.

    :ivar marginal_costs: packed log densities that depend on no model-enumerated dim, by ordinal.
    :ivar log_factors: packed unscaled log densities to sum out, by ordinal.
    :ivar ordering: every sample site's ordinal (model and guide).
    :ivar sum_dims: the symbols of the model-enumerated dims.
    :ivar scale: the one ``poutine.scale`` all log factors share.
    """

    def __init__(
        self,
        marginal_costs: OrderedDict[Ordinal, list[torch.Tensor]],
        log_factors: OrderedDict[Ordinal, list[torch.Tensor]],
        ordering: dict[str, Ordinal],
        sum_dims: set[str],
        scale: Any,
    ) -> None:
        self.marginal_costs = marginal_costs
        self.log_factors = log_factors
        self.ordering = ordering
        self.sum_dims = sum_dims
        self.scale = scale


def compute_model_factors(model_trace: Trace, guide_trace: Trace) -> ModelFactors:
    """Split the packed model trace into costs and log factors (see :class:`ModelFactors`).

    A site ``y`` may depend on ``x`` when ``x``'s ordinal is a subset of ``y``'s.
    """
    ordering: dict[str, Ordinal] = {}
    # Most sites share a few plate stacks: compute each stack's ordinal once.
    by_stack: dict[tuple[Any, ...], Ordinal] = {}
    for tr in (model_trace, guide_trace):
        for name, site in tr.nodes.items():
            if site["type"] == "sample":
                stack = site["cond_indep_stack"]
                ordinal = by_stack.get(stack)
                if ordinal is None:
                    ordinal = by_stack[stack] = find_ordinal(tr, site)
                ordering[name] = ordinal
    cost_sites: OrderedDict[Ordinal, list[Message]] = OrderedDict()
    enum_sites: OrderedDict[Ordinal, list[Message]] = OrderedDict()
    enum_dims: set[str] = set()
    non_enum_dims: set[str] = set().union(*by_stack.values())
    guide_nodes = guide_trace.nodes
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if name in guide_nodes:
            cost_sites.setdefault(ordering[name], []).append(site)
            non_enum_dims.update(_dims(guide_nodes[name]["packed"]["log_prob"]))
        elif site["infer"].get("_enumerate_dim") is None:
            cost_sites.setdefault(ordering[name], []).append(site)
        else:
            enum_sites.setdefault(ordering[name], []).append(site)
            enum_dims.update(_dims(site["packed"]["log_prob"]))
    enum_dims -= non_enum_dims
    log_factors: OrderedDict[Ordinal, list[torch.Tensor]] = OrderedDict()
    marginal_costs: OrderedDict[Ordinal, list[torch.Tensor]] = OrderedDict()
    if not enum_sites:
        for t, sites_t in cost_sites.items():
            marginal_costs[t] = [site["packed"]["log_prob"] for site in sites_t]
        return ModelFactors(marginal_costs, log_factors, ordering, enum_dims, 1)
    check_model_guide_enumeration_constraint(enum_sites, guide_trace)

    scales: list[Any] = []
    for t, sites_t in cost_sites.items():
        for site in sites_t:
            site_packed = site["packed"]
            if enum_dims.isdisjoint(_dims(site_packed["log_prob"])):
                marginal_costs.setdefault(t, []).append(site_packed["log_prob"])
            else:
                # The mask goes inside the log expectation and the scale outside it.
                if "masked_log_prob" not in site_packed:
                    site_packed["masked_log_prob"] = packed.scale_and_mask(
                        site_packed["unscaled_log_prob"], mask=site_packed["mask"]
                    )
                log_factors.setdefault(t, []).append(site_packed["masked_log_prob"])
                scales.append(site["scale"])
    for t, sites_t in enum_sites.items():
        for site in sites_t:
            log_factors.setdefault(t, []).append(site["packed"]["unscaled_log_prob"])
            scales.append(site["scale"])
    return ModelFactors(marginal_costs, log_factors, ordering, enum_dims, _get_common_scale(scales))


def _make_dist(fn: Any, logits: torch.Tensor) -> Any:
    # A Bernoulli's marginal has one logit; other discrete families take the whole vector.
    if isinstance(fn, Bernoulli):
        logits = logits[..., 1] - logits[..., 0]
    return type(fn)(logits=logits)


def _site_logits(factors: ModelFactors, tr: Trace, site: Message, cache: dict[Any, Any]) -> torch.Tensor:
    """The unnormalized log marginal of an enumerated site, its values on the rightmost dim."""
    enum_dim: int = site["infer"]["_enumerate_dim"]
    logits: torch.Tensor = contract_to_tensor(
        factors.log_factors,
        factors.sum_dims,
        target_ordinal=find_ordinal(tr, site),
        target_dims={site["infer"]["_enumerate_symbol"]},
        cache=cache,
    )
    logits = packed.unpack(logits, tr.symbol_to_dim)
    logits = logits.unsqueeze(-1).transpose(-1, enum_dim - 1)
    while logits.shape[0] == 1:
        logits = logits.squeeze(0)
    return logits


def compute_marginals(model_trace: Trace, guide_trace: Trace) -> OrderedDict[str, Any]:
    """The posterior marginal distribution of each model-enumerated site."""
    factors = compute_model_factors(model_trace, guide_trace)
    marginals: OrderedDict[str, Any] = OrderedDict()
    with shared_intermediates() as cache:
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or name in guide_trace.nodes or site["infer"].get("_enumerate_dim") is None:
                continue
            marginals[name] = _make_dist(site["fn"], _site_logits(factors, model_trace, site, cache))
    return marginals


class BackwardSampleMessenger(Messenger):
    """Draw model-enumerated sites from the joint posterior, one at a time (forward filter,
    backward sample): each site's conditional given the sites drawn before it.

    :param enum_trace: the packed, enumerated model trace.
    :param guide_trace: the packed guide trace it was run against.
    """

    def __init__(self, enum_trace: Trace, guide_trace: Trace) -> None:
        super().__init__()
        self.enum_trace = enum_trace
        factors = compute_model_factors(enum_trace, guide_trace)
        self.factors = factors
        self.cache: dict[Any, Any] = {}

    def __enter__(self) -> BackwardSampleMessenger:
        self.cache = {}
        super().__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            assert not self.factors.sum_dims, self.factors.sum_dims
        super().__exit__(exc_type, exc_value, traceback)

    def _enum_site(self, msg: Message) -> Message | None:
        site = self.enum_trace.nodes.get(msg["name"] or "")
        if site is None or site["infer"].get("_enumerate_symbol") is None:
            return None
        return site

    def _pyro_sample(self, msg: Message) -> None:
        site = self._enum_site(msg)
        if site is None:
            return
        with shared_intermediates(self.cache):
            logits = _site_logits(self.factors, self.enum_trace, site, self.cache)
        msg["fn"] = _make_dist(msg["fn"], logits)

    def _pyro_post_sample(self, msg: Message) -> None:
        site = self._enum_site(msg)
        if site is None:
            return
        symbol = site["infer"]["_enumerate_symbol"]
        value = packed.pack(msg["value"].long(), site["infer"]["_dim_to_symbol"])
        assert symbol not in _dims(value)
        for terms in self.factors.log_factors.values():
            for i, term in enumerate(terms):
                if symbol in _dims(term):
                    terms[i] = packed.gather(term, value, symbol)
        self.factors.sum_dims.remove(symbol)

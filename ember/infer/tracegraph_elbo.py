"""``TraceGraph_ELBO``: score-function terms weighted by downstream costs only, with baselines.

Each non-reparameterized guide site ``z`` gets a REINFORCE term ``log q(z) * cost(z)``, where
``cost(z)`` sums only the ``log p - log q`` terms that ``z`` can influence. That dependency
is found by provenance tracking: :class:`TrackNonReparam` tags the value of each
non-reparameterized site with its name, the tag flows through every torch op, and a site's
log density carries the tags of every value it was computed from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch.utils._pytree import tree_map

from ember.distributions.util import is_identically_zero
from ember.infer.elbo import ELBO, Model, TracePair, _JitELBO, _tensor
from ember.infer.enum import get_importance_trace
from ember.infer.util import (
    MultiFrameTensor,
    check_if_enumerated,
    is_validation_enabled,
    torch_backward,
    torch_item,
)
from ember.ops.provenance import detach_provenance, extract_provenance, get_provenance, track_provenance
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember.primitives import get_param_store, param
from ember._util import warn_if_nan

__all__ = ["JitTraceGraph_ELBO", "TraceGraph_ELBO", "TrackNonReparam"]


class TrackNonReparam(Messenger):
    """Tag the value of every non-reparameterized latent sample site with its name.

    Changes step 3 (postprocess) of unobserved ``sample`` messages whose distribution has no
    ``rsample``: the value becomes a :class:`~ember.ops.provenance.ProvenanceTensor` whose
    provenance is ``{name}``, and everything computed from it inherits the tag. Installed
    outside the tracers, its postprocess runs first, so traces record the tagged value.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine import trace
    >>> def model():
    ...     a = ember.sample("a", dist.Bernoulli(0.3))
    ...     ember.sample("b", dist.Normal(a, 1.0), obs=torch.tensor(0.0))
    >>> with TrackNonReparam():
    ...     tr = trace(model).get_trace()
    >>> tr.compute_log_prob()
    >>> sorted(get_provenance(tr.nodes["b"]["log_prob"]))
    ['a']
    """

    def _pyro_post_sample(self, msg: Message) -> None:
        if msg["is_observed"] or site_is_subsample(msg) or getattr(msg["fn"], "has_rsample", False):
            return
        msg["value"] = track_provenance(msg["value"], frozenset({msg["name"] or ""}))


def _baseline_options(site: Message) -> tuple[Any, Any, bool, float, Any]:
    options = dict(site["infer"].get("baseline", {}))
    parsed = (
        options.pop("nn_baseline", None),
        options.pop("nn_baseline_input", None),
        bool(options.pop("use_decaying_avg_baseline", False)),
        float(options.pop("baseline_beta", 0.90)),
        options.pop("baseline_value", None),
    )
    if options:
        raise ValueError(f"Unrecognized baseline options: {options.keys()}")
    return parsed


def _detach_all(value: Any) -> Any:
    return tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, value)


def _construct_baseline(
    name: str, guide_site: Message, downstream_cost: torch.Tensor
) -> tuple[bool, torch.Tensor | float, torch.Tensor | float]:
    """``(use_baseline, baseline_loss, baseline)`` for one site, from ``infer["baseline"]``.

    A decaying average lives in the param store as ``__baseline_avg_downstream_cost_{name}``;
    a neural or user-given baseline is fit by a squared-error loss to the cost.
    """
    nn_baseline, nn_input, use_decaying_avg, beta, baseline_value = _baseline_options(guide_site)
    use_nn = nn_baseline is not None
    use_value = baseline_value is not None
    assert not (use_nn and use_value), "cannot use baseline_value and nn_baseline simultaneously"
    baseline: torch.Tensor | float = 0.0
    baseline_loss: torch.Tensor | float = 0.0
    if use_decaying_avg:
        param_name = "__baseline_avg_downstream_cost_" + name
        with torch.no_grad():
            old = param(param_name, torch.zeros(downstream_cost.shape, device=guide_site["value"].device))
            new = (1 - beta) * downstream_cost + beta * old
        get_param_store()[param_name] = detach_provenance(new)
        baseline = baseline + old
    if use_nn:
        baseline = baseline + nn_baseline(_detach_all(nn_input))
    elif use_value:
        baseline = baseline + baseline_value
    if use_nn or use_value:
        baseline_loss = baseline_loss + torch.pow(downstream_cost.detach() - baseline, 2.0).sum()
    use_baseline = use_nn or use_value or use_decaying_avg
    if use_baseline:
        assert isinstance(baseline, torch.Tensor)
        if downstream_cost.shape != baseline.shape:
            # Pyro's text shows the cost's shape as a plain tuple (its provenance wrapper's doing).
            raise ValueError(
                f"Expected baseline at site {name} to be {tuple(downstream_cost.shape)} instead got {baseline.shape}"
            )
    return use_baseline, baseline_loss, baseline


def _sum(terms: Iterable[torch.Tensor]) -> torch.Tensor | float:
    total: torch.Tensor | float = 0.0
    for term in terms:
        total = total + term
    return total


def _compute_elbo(model_trace: Trace, guide_trace: Trace) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """``(elbo, surrogate_loss)`` of one particle, both without provenance tags."""
    downstream_costs: defaultdict[str, MultiFrameTensor] = defaultdict(MultiFrameTensor)
    model_sums: list[torch.Tensor] = []
    guide_sums: list[torch.Tensor] = []
    entropy_sums: list[torch.Tensor] = []
    for site in model_trace.nodes.values():
        if site["type"] == "sample":
            log_prob_sum = site["log_prob_sum"]
            model_sums.append(log_prob_sum)
            for key in get_provenance(log_prob_sum):
                downstream_costs[key].add((site["cond_indep_stack"], site["log_prob"]))
    for site in guide_trace.nodes.values():
        if site["type"] == "sample":
            log_prob_sum = site["log_prob_sum"]
            guide_sums.append(log_prob_sum)
            entropy_term = site["score_parts"].entropy_term
            if not is_identically_zero(entropy_term):
                assert isinstance(entropy_term, torch.Tensor)
                entropy_sums.append(entropy_term.sum())
            for key in get_provenance(log_prob_sum):
                downstream_costs[key].add((site["cond_indep_stack"], -site["log_prob"]))

    # Site by site, in Pyro's order, so the float32 value (and so the loss) equals Pyro's.
    elbo: torch.Tensor | float = 0.0
    for term in model_sums:
        elbo = elbo + term
    for term in guide_sums:
        elbo = elbo - term
    surrogate_elbo = _sum(model_sums) - _sum(entropy_sums)
    baseline_loss: torch.Tensor | float = 0.0
    for name, costs in downstream_costs.items():
        guide_site = guide_trace.nodes[name]
        cost = costs.sum_to(guide_site["cond_indep_stack"])
        assert isinstance(cost, torch.Tensor)
        use_baseline, baseline_loss_term, baseline = _construct_baseline(name, guide_site, cost)
        if use_baseline:
            cost = cost - baseline
            baseline_loss = baseline_loss + baseline_loss_term
        surrogate_elbo = surrogate_elbo + (guide_site["score_parts"].score_function * cost.detach()).sum()
    surrogate_loss = -surrogate_elbo + baseline_loss
    # Either may be a float (no sample sites): extract_provenance passes those through.
    return extract_provenance(elbo)[0], extract_provenance(surrogate_loss)[0]


class TraceGraph_ELBO(ELBO):
    """The ELBO with fine-grained Rao-Blackwellization of score-function terms, and baselines.

    Sites are traced as dense graphs and the cost each non-reparameterized guide site
    multiplies is restricted to the log densities it influences (found by provenance
    tracking). A guide site may reduce variance further with
    ``infer={"baseline": {...}}``: ``use_decaying_avg_baseline`` (with ``baseline_beta``,
    default 0.9), ``nn_baseline`` (a module) with ``nn_baseline_input``, or ``baseline_value``
    (a tensor). Options are those of :class:`~ember.infer.elbo.ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     ember.sample("b", dist.Bernoulli(0.5))
    >>> def guide():
    ...     p = ember.param("p", torch.tensor(0.5), constraint=dist.constraints.unit_interval)
    ...     ember.sample("b", dist.Bernoulli(p), infer={"baseline": {"use_decaying_avg_baseline": True}})
    >>> ember.clear_param_store()
    >>> abs(TraceGraph_ELBO().loss_and_grads(model, guide))  # q = p, so the ELBO is 0
    0.0
    """

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        with TrackNonReparam():
            model_trace, guide_trace = get_importance_trace("dense", self.max_plate_nesting, model, guide, args, kwargs)
        if is_validation_enabled():
            check_if_enumerated(guide_trace)
        return model_trace, guide_trace

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """An estimate of the negative ELBO from ``num_particles`` samples."""
        elbo = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            particle = torch_item(model_trace.log_prob_sum()) - torch_item(guide_trace.log_prob_sum())
            elbo += particle / float(self.num_particles)
        loss = -elbo
        warn_if_nan(loss, "loss")
        return loss

    def _loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """``(elbo, surrogate_loss)`` averaged over the particles."""
        elbo: torch.Tensor | float = 0.0
        surrogate_loss: torch.Tensor | float = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            particle_elbo, particle_surrogate = _compute_elbo(model_trace, guide_trace)
            elbo = elbo + particle_elbo
            surrogate_loss = surrogate_loss + particle_surrogate
        return elbo / self.num_particles, surrogate_loss / self.num_particles

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The negative ELBO, as a tensor whose gradient is the surrogate's (baseline loss included)."""
        elbo, surrogate_loss = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        loss = -_tensor(elbo).detach()
        surrogate = _tensor(surrogate_loss)
        warn_if_nan(loss, "loss")
        return loss + (surrogate - surrogate.detach())

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The negative ELBO; backpropagates the surrogate (and baseline) loss."""
        elbo, surrogate_loss = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        torch_backward(surrogate_loss, retain_graph=self.retain_graph)
        loss = -torch_item(elbo)
        warn_if_nan(loss, "loss")
        return loss


class JitTraceGraph_ELBO(_JitELBO, TraceGraph_ELBO):
    """:class:`TraceGraph_ELBO` with the loss compiled by :func:`torch.jit.trace`.

    The restrictions of :class:`~ember.infer.trace_elbo.JitTrace_ELBO` apply. A decaying
    average baseline is updated only on the first, eager, call: the compiled graph cannot
    write to the param store.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(0.0)), 1.0))
    >>> ember.clear_param_store()
    >>> elbo = JitTraceGraph_ELBO(ignore_jit_warnings=True)
    >>> [abs(elbo.loss_and_grads(model, guide)) for _ in range(2)]  # q = p, so the ELBO is 0
    [0.0, 0.0]
    """

    def _eager_loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        elbo, surrogate_loss = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        return -_tensor(elbo).detach(), _tensor(surrogate_loss)

"""``Trace_ELBO``: the Monte Carlo ELBO with a plate-aware score-function surrogate, and its Jit form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ember.distributions.util import is_identically_zero
from ember.infer.elbo import ELBO, Model, TracePair, _JitELBO, _tensor
from ember.infer.enum import get_importance_trace
from ember.infer.util import (
    MultiFrameTensor,
    check_if_enumerated,
    get_plate_stacks,
    is_validation_enabled,
    torch_item,
)
from ember.poutine.trace_struct import Trace
from ember._util import warn_if_nan

__all__ = ["JitTrace_ELBO", "Trace_ELBO"]


def _total(terms: list[torch.Tensor]) -> torch.Tensor | float:
    """The sum of scalar tensors, in one reduction."""
    if not terms:
        return 0.0
    if len(terms) == 1:
        return terms[0]
    return torch.stack(terms).sum()


def _sample_sums(tr: Trace) -> list[torch.Tensor]:
    return [site["log_prob_sum"] for site in tr.nodes.values() if site["type"] == "sample"]


def _site_sums_in_double(model_trace: Trace, guide_trace: Trace) -> float:
    """``log p - log q`` of one particle with the per-site sums added in double precision.

    Pyro adds each site's ``log_prob_sum`` as a Python float; one float64 reduction over
    the stacked site sums gives the same value to ~1e-16 with a single device sync.
    """
    model_sums, guide_sums = _sample_sums(model_trace), _sample_sums(guide_trace)
    if not model_sums and not guide_sums:
        return 0.0
    sums = torch.stack([*model_sums, *guide_sums]).detach().to(torch.float64)
    return float((sums[: len(model_sums)].sum() - sums[len(model_sums) :].sum()).item())


def _has_params(*traces: Trace) -> bool:
    return any(site["type"] == "param" for tr in traces for site in tr.nodes.values())


def _compute_log_r(model_trace: Trace, guide_trace: Trace) -> MultiFrameTensor:
    """The detached ``log p - log q`` per site, grouped by plates (the score functions' cost)."""
    log_r = MultiFrameTensor()
    stacks = get_plate_stacks(model_trace)
    for name, site in model_trace.nodes.items():
        if site["type"] == "sample":
            term = site["log_prob"]
            if not site["is_observed"]:
                term = term - guide_trace.nodes[name]["log_prob"]
            log_r.add((stacks[name], term.detach()))
    return log_r


class Trace_ELBO(ELBO):
    """The ELBO estimated from one trace of the guide and the model replayed against it.

    Reparameterized guide sites contribute pathwise gradients. Other sites contribute
    score-function (REINFORCE) terms, each weighted by the ``log p - log q`` of the sites that
    share its plates, which Rao-Blackwellizes over the independence the plates declare; for
    finer dependency tracking use :class:`~ember.infer.tracegraph_elbo.TraceGraph_ELBO`.

    The options are those of :class:`~ember.infer.elbo.ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     ember.sample("x", dist.Normal(ember.sample("z", dist.Normal(0.0, 1.0)), 1.0), obs=torch.tensor(0.0))
    >>> def guide():
    ...     ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(0.0)), 2.0 ** -0.5))
    >>> ember.clear_param_store()
    >>> round(-Trace_ELBO().loss(model, guide), 4)  # the guide is the posterior: ELBO = log N(0; 0, 2)
    -1.2655
    """

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)
        if is_validation_enabled():
            check_if_enumerated(guide_trace)
        return model_trace, guide_trace

    def _elbo_value(self, model_trace: Trace, guide_trace: Trace) -> float:
        """The ELBO of one particle for :meth:`loss`: each trace's total read as a float."""
        return torch_item(model_trace.log_prob_sum()) - torch_item(guide_trace.log_prob_sum())

    def _elbo_value_of_particle(self, model_trace: Trace, guide_trace: Trace, elbo: torch.Tensor | float) -> float:
        """The ELBO of one particle for :meth:`loss_and_grads` (``elbo`` is :meth:`_particle`'s)."""
        return _site_sums_in_double(model_trace, guide_trace)

    def _particle(self, model_trace: Trace, guide_trace: Trace) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """``(elbo, surrogate_elbo)`` of one particle; the surrogate's gradient is the estimator's."""
        guide_sums: list[torch.Tensor] = []
        entropy_sums: list[torch.Tensor] = []
        score_terms: list[torch.Tensor] = []
        log_r: MultiFrameTensor | None = None
        # While every guide site is an unscaled reparameterized one, the surrogate is the ELBO.
        surrogate_is_elbo = True
        for site in guide_trace.nodes.values():
            if site["type"] != "sample":
                continue
            log_prob_sum = site["log_prob_sum"]
            guide_sums.append(log_prob_sum)
            _, score_function, entropy_term = site["score_parts"]
            if is_identically_zero(entropy_term):
                surrogate_is_elbo = False
            elif entropy_term is site["log_prob"]:
                entropy_sums.append(log_prob_sum)
            else:
                surrogate_is_elbo = False
                entropy_sums.append(_tensor(entropy_term).sum())
            if not is_identically_zero(score_function):
                surrogate_is_elbo = False
                if log_r is None:
                    log_r = _compute_log_r(model_trace, guide_trace)
                term = log_r.sum_to(site["cond_indep_stack"]) * score_function
                score_terms.append(_tensor(term).sum())
        model_total = _total(_sample_sums(model_trace))
        elbo = model_total - _total(guide_sums)
        if surrogate_is_elbo:
            return elbo, elbo
        return elbo, model_total - _total(entropy_sums) + _total(score_terms)

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """An estimate of the negative ELBO from ``num_particles`` samples.

        As in Pyro, each trace's total is read as a Python float and the particles are
        combined in double precision.
        """
        elbo = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo += self._elbo_value(model_trace, guide_trace) / self.num_particles
        loss = -elbo
        warn_if_nan(loss, "loss")
        return loss

    def _loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, surrogate_loss)`` averaged over the particles, as tensors."""
        elbos: list[torch.Tensor] = []
        surrogates: list[torch.Tensor] = []
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo, surrogate = self._particle(model_trace, guide_trace)
            elbos.append(_tensor(elbo))
            surrogates.append(_tensor(surrogate))
        n = self.num_particles
        loss = _tensor(_total(elbos)).detach() / -n
        surrogate_loss = _tensor(_total(surrogates)) / -n
        return loss, surrogate_loss

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The negative ELBO, as a tensor whose gradient is the surrogate's."""
        loss, surrogate_loss = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        warn_if_nan(surrogate_loss, "loss")
        return loss + (surrogate_loss - surrogate_loss.detach())

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The negative ELBO; backpropagates each particle's surrogate into the params."""
        loss = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo, surrogate = self._particle(model_trace, guide_trace)
            loss -= self._elbo_value_of_particle(model_trace, guide_trace, elbo) / self.num_particles
            if isinstance(surrogate, torch.Tensor) and surrogate.requires_grad and _has_params(model_trace, guide_trace):
                torch.autograd.backward(surrogate / -self.num_particles, retain_graph=self.retain_graph)
        warn_if_nan(loss, "loss")
        return loss


class JitTrace_ELBO(_JitELBO, Trace_ELBO):
    """:class:`Trace_ELBO` with the loss compiled by :func:`torch.jit.trace`.

    The model and guide must have static structure and read no global data but the param
    store. Tensor inputs go in ``*args``; other inputs go in ``**kwargs``, and each distinct
    ``kwargs`` compiles anew. The values, draws and gradients are those of
    :class:`Trace_ELBO` run with the same seed.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(1.0)), 1.0))
    >>> ember.clear_param_store()
    >>> elbo, eager = JitTrace_ELBO(ignore_jit_warnings=True), Trace_ELBO()
    >>> for step in range(3):  # the first call compiles; later ones run the graph
    ...     _ = torch.manual_seed(step)
    ...     compiled_loss = elbo.loss(model, guide)
    ...     _ = torch.manual_seed(step)
    ...     assert abs(compiled_loss - eager.loss(model, guide)) < 1e-6
    """

    def _eager_loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._loss_and_surrogate_loss(model, guide, args, kwargs)

    def loss_and_surrogate_loss(
        self, model: Model, guide: Model, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The compiled ``(loss, surrogate_loss)``, as tensors (Pyro's public name for them)."""
        return self._jit_loss_and_surrogate_loss(model, guide, args, kwargs)

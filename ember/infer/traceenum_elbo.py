"""``TraceEnum_ELBO``: the ELBO with discrete sites summed out exactly, and its Jit form.

Model sites marked ``infer={"enumerate": "parallel"}`` (and absent from the guide) are
summed out by a plated sum-product over their enumeration dims; guide sites may be
enumerated in parallel or sequentially (through ``queue``), or locally sampled
(``num_samples``); the rest is the DiCE estimator (:class:`~ember.infer.util.Dice`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from queue import LifoQueue
from typing import Any

import torch
from opt_einsum import shared_intermediates

from ember._util import warn_at_caller, warn_if_nan
from ember.distributions.util import is_identically_zero
from ember.infer._checks import check_traceenum_requirements
from ember.infer._dice import Dice
from ember.infer._enum_factors import (
    BackwardSampleMessenger,
    ModelFactors,
    check_tmc_elbo_constraint,
    compute_marginals,
    compute_model_factors,
)
from ember.infer._sumproduct import LogSumProduct
from ember.infer.elbo import ELBO, Model, TracePair, _JitELBO, _tensor
from ember.infer.enum import _importance_trace, iter_discrete_escape, iter_discrete_extend
from ember.infer.util import is_validation_enabled, torch_item
from ember.ops import packed
from ember.ops.contract import contract_tensor_tree, contract_to_tensor
from ember.ops.rings import LogRing, SampleRing
from ember.poutine.enum_messenger import EnumMessenger
from ember.poutine.handlers import block, queue, replay
from ember.poutine.messenger import Messenger, unwrap
from ember.poutine.trace_struct import Trace

__all__ = ["JitTraceEnum_ELBO", "TraceEnum_ELBO"]

_NO_ENUMERATION = (
    "TraceEnum_ELBO found no sample sites configured for enumeration. "
    "If you want to enumerate sites, you need to @config_enumerate or set "
    'infer={"enumerate": "sequential"} or infer={"enumerate": "parallel"}? '
    "If you do not want to enumerate, consider using Trace_ELBO instead."
)


def _has_enumerated_sites(*traces: Trace) -> bool:
    return any(
        site["type"] == "sample" and site["infer"].get("enumerate") for tr in traces for site in tr.nodes.values()
    )


def _guide_is_plain(guide_trace: Trace) -> bool:
    """Whether no guide site carries a DiCE factor (none enumerated, none score-function)."""
    for site in guide_trace.nodes.values():
        if site["type"] != "sample":
            continue
        if site["infer"].get("enumerate") or not is_identically_zero(site["packed"]["score_parts"].score_function):
            return False
    return True


def _sum_all(terms: Iterator[torch.Tensor]) -> torch.Tensor | float:
    sums = [t.sum() for t in terms]
    if not sums:
        return 0.0
    return sums[0] if len(sums) == 1 else torch.stack(sums).sum()


# Up to this many factors in one plate context, the cached elimination plan of
# LogSumProduct beats ember.ops' contraction (CPU time per SVI.step of an HMM with T
# steps has 2T factors: T=10, 6.6 against 7.9 ms; T=30, 14 against 12 ms; T=1000, 359 against 279 ms).
_FEW_FACTORS = 40


def _plain_elbo(factors: ModelFactors, guide_trace: Trace, sum_product: LogSumProduct) -> torch.Tensor | float:
    """The ELBO when the guide has no DiCE factors: every cost counts in full."""
    elbo = _sum_all(t for terms in factors.marginal_costs.values() for t in terms)
    if factors.log_factors:
        (first, *others) = factors.log_factors.values()
        log_z: torch.Tensor | float
        if not others and len(first) < _FEW_FACTORS:
            log_z = sum_product(first, factors.sum_dims)
        else:
            # ember.ops contracts long chains by a parallel scan; it also handles plate trees.
            log_z = contract_to_tensor(factors.log_factors, factors.sum_dims, ring=LogRing()).sum()
        scale = factors.scale
        elbo = elbo + (log_z if isinstance(scale, (int, float)) and scale == 1 else log_z * scale)
    guide_sums = [site["packed"]["log_prob"].sum() for site in guide_trace.nodes.values() if site["type"] == "sample"]
    if guide_sums:
        elbo = elbo - (guide_sums[0] if len(guide_sums) == 1 else torch.stack(guide_sums).sum())
    return elbo


def _compute_dice_elbo(model_trace: Trace, guide_trace: Trace, sum_product: LogSumProduct | None = None) -> torch.Tensor | float:
    """One particle's ELBO, differentiable by DiCE."""
    factors = compute_model_factors(model_trace, guide_trace)
    if sum_product is not None and _guide_is_plain(guide_trace):
        return _plain_elbo(factors, guide_trace, sum_product)
    costs = factors.marginal_costs
    if factors.log_factors:
        dim_to_size: dict[str, int] = {}
        for terms in factors.log_factors.values():
            for term in terms:
                dim_to_size.update(zip(getattr(term, "_pyro_dims"), term.shape))
        # contract_tensor_tree keeps which plates each result lives in, which DiCE needs to
        # leave out terms of zero expectation.
        with shared_intermediates() as cache:
            ring = SampleRing(cache=cache, dim_to_size=dim_to_size)
            tree = contract_tensor_tree(factors.log_factors, factors.sum_dims, ring=ring)
            model_trace._sharing_cache = cache  # type: ignore[attr-defined]  # read by TraceEnumSample_ELBO
        for t, terms in tree.items():
            costs.setdefault(t, []).extend(packed.scale_and_mask(term, scale=factors.scale) for term in terms)
    for name, site in guide_trace.nodes.items():
        if site["type"] == "sample":
            costs.setdefault(factors.ordering[name], []).append(packed.neg(site["packed"]["log_prob"]))
    return Dice(guide_trace, factors.ordering).compute_expectation(costs)


def enumerated_traces(elbo: ELBO, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[TracePair]:
    """The trace pairs of the enumerating ELBOs: the guide enumerated (and its sequential
    sites expanded by ``queue``), then the model enumerated left of the guide's dims."""
    if elbo.max_plate_nesting == float("inf"):
        elbo._guess_max_plate_nesting(model, guide, args, kwargs)
    if elbo.vectorize_particles:
        guide = elbo._vectorized_num_particles(guide)
        model = elbo._vectorized_num_particles(model)
    guide = EnumMessenger(first_available_dim=-1 - int(elbo.max_plate_nesting))(guide)
    # No first dim: the model's dims continue from where the guide's enumeration stopped.
    model = EnumMessenger()(model)
    pending: LifoQueue[Trace] = LifoQueue()
    guide = queue(guide, pending, escape_fn=iter_discrete_escape, extend_fn=iter_discrete_extend)
    for _ in range(1 if elbo.vectorize_particles else elbo.num_particles):
        pending.put(Trace())
        while not pending.empty():
            yield elbo._get_trace(model, guide, args, kwargs)


class TraceEnum_ELBO(ELBO):
    """The ELBO with enumerated discrete sites summed out exactly.

    To enumerate a guide site, mark it ``infer={"enumerate": "sequential"}`` (one guide
    run per value) or ``"parallel"`` (all values at once along a new dim); to enumerate a
    model site, mark it ``"parallel"`` and leave it out of the guide
    (:func:`~ember.infer.enum.config_enumerate` marks every discrete site). Sites marked
    ``infer={"enumerate": "parallel", "num_samples": k}`` are sampled ``k`` times instead.
    Enumerated sites in ``markov`` contexts reuse dims, so chains cost linear time.

    Variables outside a :class:`~ember.plate` must not depend on variables inside it.
    The options are those of :class:`~ember.infer.elbo.ELBO`; ``max_plate_nesting`` is
    guessed from one run when left infinite.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     z = ember.sample("z", dist.Bernoulli(0.3), infer={"enumerate": "parallel"})
    ...     ember.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(1.0))
    >>> guide = lambda: None
    >>> x_given_z = dist.Normal(torch.tensor([0.0, 1.0]), 1.0).log_prob(torch.tensor(1.0))
    >>> exact = torch.logsumexp(x_given_z + torch.tensor([0.7, 0.3]).log(), 0)
    >>> abs(TraceEnum_ELBO(max_plate_nesting=0).loss(model, guide) + exact.item()) < 1e-6
    True
    """

    # The plans of the log-space sum-product, cached per model structure (made on first use).
    _plans: LogSumProduct | None = None

    @property
    def _sum_product(self) -> LogSumProduct:
        if self._plans is None:
            self._plans = LogSumProduct()
        return self._plans

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = _importance_trace(
            "flat", self.max_plate_nesting, model, guide, args, kwargs, False, True
        )
        if is_validation_enabled():
            check_traceenum_requirements(model_trace, guide_trace)
            check_tmc_elbo_constraint(model_trace, guide_trace)
            if self.strict_enumeration_warning and not _has_enumerated_sites(guide_trace, model_trace):
                warn_at_caller(_NO_ENUMERATION)
        guide_trace.pack_tensors()
        model_trace.pack_tensors(guide_trace.plate_to_symbol)
        return model_trace, guide_trace

    def _get_traces(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[TracePair]:
        if isinstance(unwrap(guide), Messenger):
            raise NotImplementedError(f"{type(self).__name__} does not support GuideMessenger")
        return enumerated_traces(self, model, guide, args, kwargs)

    def _particle_elbos(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[tuple[Trace, Trace, torch.Tensor | float]]:
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            yield model_trace, guide_trace, _compute_dice_elbo(model_trace, guide_trace, self._sum_product)

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """An estimate of the negative ELBO (exact where every latent site is enumerated)."""
        elbo = 0.0
        for _, _, elbo_particle in self._particle_elbos(model, guide, args, kwargs):
            if not is_identically_zero(elbo_particle):
                elbo += torch_item(elbo_particle) / self.num_particles
        loss = -elbo
        warn_if_nan(loss, "loss")
        return loss

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The negative ELBO as a tensor to differentiate.

        :raises ValueError: if it has no gradient (e.g. it is identically zero).
        """
        elbo: torch.Tensor | float = 0.0
        for _, _, elbo_particle in self._particle_elbos(model, guide, args, kwargs):
            if not is_identically_zero(elbo_particle):
                elbo = elbo + elbo_particle
        elbo = elbo / self.num_particles
        if not isinstance(elbo, torch.Tensor) or not elbo.requires_grad:
            raise ValueError(f"ELBO is cannot be differentiated: {elbo}")
        loss = -elbo
        warn_if_nan(loss, "loss")
        return loss

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The negative ELBO; backpropagates each particle's ELBO into the params."""
        elbo = 0.0
        for model_trace, guide_trace, elbo_particle in self._particle_elbos(model, guide, args, kwargs):
            if is_identically_zero(elbo_particle):
                continue
            assert isinstance(elbo_particle, torch.Tensor)
            elbo += elbo_particle.item() / self.num_particles
            trainable = any(site["type"] == "param" for tr in (model_trace, guide_trace) for site in tr.nodes.values())
            if trainable and elbo_particle.requires_grad:
                torch.autograd.backward(-elbo_particle / self.num_particles, retain_graph=True)
        loss = -elbo
        warn_if_nan(loss, "loss")
        return loss

    def _loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, surrogate_loss)`` over all particles as tensors (equal values; the dice
        factors make the surrogate's gradient the ELBO's): what the compiled ELBOs record."""
        elbo: torch.Tensor | float = 0.0
        for _, _, elbo_particle in self._particle_elbos(model, guide, args, kwargs):
            elbo = elbo + elbo_particle
        surrogate = _tensor(elbo) * (-1.0 / self.num_particles)
        return surrogate.detach(), surrogate

    def _single_trace_pair(self, what: str, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        if self.num_particles != 1:
            raise NotImplementedError(f"TraceEnum_ELBO.{what}() is not compatible with multiple particles.")
        model_trace, guide_trace = next(self._get_traces(model, guide, args, kwargs))
        for site in guide_trace.nodes.values():
            if site["type"] == "sample" and ("_enumerate_dim" in site["infer"] or "_enum_total" in site["infer"]):
                raise NotImplementedError(f"TraceEnum_ELBO.{what}() is not compatible with guide enumeration.")
        return model_trace, guide_trace

    def compute_marginals(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The posterior marginal distribution of each model-enumerated site, by name.

        :raises NotImplementedError: with several particles or with guide enumeration.
        """
        model_trace, guide_trace = self._single_trace_pair("compute_marginals", model, guide, args, kwargs)
        return compute_marginals(model_trace, guide_trace)

    def sample_posterior(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> Any:
        """Run the model once with its enumerated sites drawn from their joint posterior.

        :returns: the model's return value.
        :raises NotImplementedError: with several particles or with guide enumeration.
        """
        with block(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Found vars in model but not guide")
            model_trace, guide_trace = self._single_trace_pair("sample_posterior", model, guide, args, kwargs)
        with BackwardSampleMessenger(model_trace, guide_trace):
            return replay(model, trace=guide_trace)(*args, **kwargs)


class JitTraceEnum_ELBO(_JitELBO, TraceEnum_ELBO):
    """:class:`TraceEnum_ELBO` with the loss compiled by :func:`torch.jit.trace`.

    The model and guide must have static structure and read no global data but the param
    store; tensor inputs go in ``*args`` and other inputs in ``**kwargs`` (each distinct
    ``kwargs`` compiles anew).
    """

    def _eager_loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._loss_and_surrogate_loss(model, guide, args, kwargs)

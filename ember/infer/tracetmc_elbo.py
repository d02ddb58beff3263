"""``TraceTMC_ELBO``: the Tensor Monte Carlo estimate of the log marginal likelihood.

Each site marked ``infer={"enumerate": "parallel", "num_samples": k}`` is drawn ``k`` times
along its own dim (or enumerated exactly without ``num_samples``), and the importance
weights of every combination of draws are averaged by one plated sum-product
(:func:`ember.ops.contract.einsum`) instead of being sampled jointly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from ember._util import warn_at_caller, warn_if_nan
from ember.distributions.util import is_identically_zero
from ember.infer._checks import check_traceenum_requirements
from ember.infer._dice import compute_site_dice_factor
from ember.infer.elbo import ELBO, Model, TracePair
from ember.infer.enum import get_importance_trace
from ember.infer.traceenum_elbo import enumerated_traces
from ember.infer.util import is_validation_enabled, torch_item
from ember.ops import packed
from ember.ops.contract import einsum
from ember.poutine.trace_struct import Trace

__all__ = ["TraceTMC_ELBO"]

_NO_ENUMERATION = (
    "Found no sample sites configured for enumeration. "
    "If you want to enumerate sites, you need to @config_enumerate or set "
    'infer={"enumerate": "sequential"} or infer={"enumerate": "parallel"}? '
    "If you do not want to enumerate, consider using Trace_ELBO instead."
)


def _dims(value: Any) -> str:
    dims: str = getattr(value, "_pyro_dims", "")
    return dims


def _compute_dice_factors(model_trace: Trace, guide_trace: Trace) -> list[torch.Tensor]:
    """The DiCE factors of the proposal sites that are not reparameterized."""
    log_probs = []
    for role, tr in (("model", model_trace), ("guide", guide_trace)):
        for name, site in tr.nodes.items():
            if site["type"] != "sample" or site["is_observed"] or (role == "model" and name in guide_trace):
                continue
            log_prob, log_denom = compute_site_dice_factor(site)
            if not is_identically_zero(log_denom):
                dims = _dims(log_prob)
                log_prob = log_prob - log_denom
                setattr(log_prob, "_pyro_dims", dims)
            if not is_identically_zero(log_prob):
                assert isinstance(log_prob, torch.Tensor)
                log_probs.append(log_prob)
    return log_probs


def _compute_tmc_factors(model_trace: Trace, guide_trace: Trace) -> list[torch.Tensor]:
    """``log p`` of every model site, ``-log q`` of every proposal (guide sites and model samples)."""
    log_factors = []
    for site in guide_trace.nodes.values():
        if site["type"] == "sample" and not site["is_observed"]:
            log_factors.append(packed.neg(site["packed"]["log_prob"]))
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if (
            name not in guide_trace
            and not site["is_observed"]
            and site["infer"].get("enumerate") == "parallel"
            and site["infer"].get("num_samples", -1) > 0
        ):
            # A site sampled in the model is its own proposal.
            log_factors.append(packed.neg(site["packed"]["log_prob"]))
        log_factors.append(site["packed"]["log_prob"])
    return log_factors


def _compute_tmc_estimate(model_trace: Trace, guide_trace: Trace) -> torch.Tensor | float:
    log_factors = _compute_tmc_factors(model_trace, guide_trace)
    log_factors += _compute_dice_factors(model_trace, guide_trace)
    if not log_factors:
        return 0.0
    equation = ",".join(_dims(f) for f in log_factors) + "->"
    plates = "".join(frozenset(model_trace.plate_to_symbol.values()) | frozenset(guide_trace.plate_to_symbol.values()))
    (tmc,) = einsum(equation, *log_factors, plates=plates, backend="ember.ops.einsum.torch_log", modulo_total=False)
    result: torch.Tensor = tmc
    return result


class TraceTMC_ELBO(ELBO):
    """Tensor Monte Carlo: an importance-weighted bound from all combinations of local samples.

    Mark a site ``infer={"enumerate": "parallel", "num_samples": k}`` to draw it ``k``
    times (in the guide, or in the model if the guide lacks it), or just ``"parallel"`` to
    enumerate it; :func:`~ember.infer.enum.config_enumerate` with ``num_samples`` marks
    every site. The loss is minus the log of the average importance weight over all
    combinations of the draws, computed by tensor variable elimination. Variables outside
    a plate must not depend on variables inside it.

    The options are those of :class:`~ember.infer.elbo.ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0), infer={"enumerate": "parallel", "num_samples": 50})
    ...     ember.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(0.0))
    >>> _ = torch.manual_seed(0)
    >>> loss = TraceTMC_ELBO(max_plate_nesting=0).loss(model, lambda: None)
    >>> abs(loss + dist.Normal(0.0, 2.0 ** 0.5).log_prob(torch.tensor(0.0)).item()) < 0.1  # -log N(0; 0, 2)
    True
    """

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)
        if is_validation_enabled():
            check_traceenum_requirements(model_trace, guide_trace)
            has_enumerated = any(
                site["type"] == "sample" and site["infer"].get("enumerate")
                for tr in (guide_trace, model_trace)
                for site in tr.nodes.values()
            )
            if self.strict_enumeration_warning and not has_enumerated:
                warn_at_caller(_NO_ENUMERATION)
        model_trace.compute_score_parts()
        guide_trace.pack_tensors()
        model_trace.pack_tensors(guide_trace.plate_to_symbol)
        return model_trace, guide_trace

    def _get_traces(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[TracePair]:
        return enumerated_traces(self, model, guide, args, kwargs)

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> Any:
        """Minus the TMC estimate of the log marginal likelihood, averaged over the particles."""
        elbo: torch.Tensor | float = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo_particle = _compute_tmc_estimate(model_trace, guide_trace)
            if not is_identically_zero(elbo_particle):
                elbo = elbo + elbo_particle
        loss = -(elbo / self.num_particles)
        warn_if_nan(loss, "loss")
        return loss

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """Minus the TMC estimate, as a number."""
        with torch.no_grad():
            return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """Minus the TMC estimate; backpropagates it into the params."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if is_identically_zero(loss) or not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            return torch_item(loss)
        torch.autograd.backward(loss)
        return loss.item()

"""``TraceTailAdaptive_ELBO``: gradients of the tail-adaptive f-divergence (Wang, Liu and Liu, 2018)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ember.infer.elbo import Model
from ember.infer.trace_elbo import Trace_ELBO
from ember.infer.util import check_fully_reparametrized, is_validation_enabled
from ember.poutine.trace_struct import Trace
from ember._util import warn_at_caller, warn_if_nan

__all__ = ["TraceTailAdaptive_ELBO"]


def _per_particle(tr: Trace, num_particles: int, check: bool) -> torch.Tensor | float:
    """The log density of each particle: every sample site summed over all but the particle dim."""
    total: torch.Tensor | float = 0.0
    for site in tr.nodes.values():
        if site["type"] == "sample":
            total = total + site["log_prob"].reshape(num_particles, -1).sum(-1)
            if check:
                check_fully_reparametrized(site)
    return total


class TraceTailAdaptive_ELBO(Trace_ELBO):
    """Variational inference with the tail-adaptive f-divergence, for reparameterized guides.

    The particles, drawn at once (``vectorize_particles=True``), are ranked by their weight
    ``p / q``; each particle's ``log p - log q`` enters the surrogate weighted by its rank to
    the power ``tail_adaptive_beta``, normalised over the particles. Only the gradient is
    defined: :meth:`loss` raises ``NotImplementedError`` and :meth:`differentiable_loss` is
    ``inf`` with the surrogate's gradient (use ``RenyiELBO`` to monitor convergence). Data
    subsampling is not supported.

    The options are those of :class:`~ember.infer.elbo.ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(0.5)), 1.0))
    >>> ember.clear_param_store()
    >>> elbo = TraceTailAdaptive_ELBO(num_particles=8, vectorize_particles=True)
    >>> loss = elbo.differentiable_loss(model, guide)
    >>> loss.item(), loss.requires_grad
    (inf, True)
    """

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """Not defined: the tail-adaptive objective is known only through its gradient."""
        raise NotImplementedError("Loss method for TraceTailAdaptive_ELBO not implemented")

    def _surrogate(self, model_trace: Trace, guide_trace: Trace) -> torch.Tensor:
        if not self.vectorize_particles:
            raise NotImplementedError("TraceTailAdaptive_ELBO only implemented for vectorize_particles==True")
        if self.num_particles == 1:
            warn_at_caller(
                "For num_particles==1 TraceTailAdaptive_ELBO uses the same loss function as Trace_ELBO. "
                "Increase num_particles to get an adaptive f-divergence."
            )
        n = self.num_particles
        log_p = _per_particle(model_trace, n, check=False)
        log_q = _per_particle(guide_trace, n, check=is_validation_enabled())
        log_pq = torch.as_tensor(log_p - log_q)
        # Pyro weights particle i by (1 + argsort(log_pq)[i]) ** beta, the position-to-particle
        # map rather than its inverse (the rank itself); kept so the gradients match Pyro's.
        rank = torch.argsort(log_pq, descending=False).to(log_pq.dtype) + 1
        gamma = rank.pow(self.tail_adaptive_beta).detach()
        return -(log_pq * gamma).sum() / gamma.sum()

    def _surrogate_loss(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> torch.Tensor:
        total: torch.Tensor | float = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            total = total + self._surrogate(model_trace, guide_trace) / self.num_particles
        return torch.as_tensor(total)

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``inf``, carrying the gradient of the tail-adaptive surrogate."""
        surrogate_loss = self._surrogate_loss(model, guide, args, kwargs)
        warn_if_nan(surrogate_loss, "loss")
        return float("inf") + (surrogate_loss - surrogate_loss.detach())

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """Backpropagate the surrogate into the params; returns ``inf`` (no loss is defined)."""
        surrogate_loss = self._surrogate_loss(model, guide, args, kwargs)
        warn_if_nan(surrogate_loss, "loss")
        if surrogate_loss.requires_grad:
            torch.autograd.backward(surrogate_loss, retain_graph=self.retain_graph)
        return float("inf")

"""``RenyiELBO``: the Rényi alpha-divergence bound (alpha = 0 is the importance-weighted bound)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ember.distributions.util import is_identically_zero
from ember.infer.elbo import ELBO, Model, TracePair
from ember.infer.enum import get_importance_trace
from ember.infer.util import (
    check_if_enumerated,
    get_dependent_plate_dims,
    is_validation_enabled,
    torch_sum,
)
from ember.poutine.trace_struct import Trace
from ember._util import warn_at_caller, warn_if_nan

__all__ = ["RenyiELBO"]


class RenyiELBO(ELBO):
    r"""The variational Rényi bound of order :math:`\alpha` (Li and Turner, 2016).

    .. math:: \mathcal{L}_\alpha = \frac{1}{1-\alpha}
        \log \frac{1}{K} \sum_{k=1}^K \left(\frac{p(x, z_k)}{q(z_k)}\right)^{1-\alpha},
        \qquad z_k \sim q

    with :math:`K` = ``num_particles``. For :math:`\alpha \ge 0` it is a lower bound on the
    log evidence, tighter than the ELBO when :math:`\alpha < 1`; :math:`\alpha = 0` gives the
    importance-weighted autoencoder bound (Burda et al., 2016). Plates shared by every site
    stay independent: the bound is taken per element of them and summed. For
    :math:`\alpha = 1` use :class:`~ember.infer.trace_elbo.Trace_ELBO`.

    :param alpha: the order, not 1.
    :param num_particles: the number :math:`K` of samples.
    :param max_plate_nesting: a bound on the number of nested plates.
    :param max_iarange_nesting: deprecated alias of ``max_plate_nesting``.
    :param vectorize_particles: draw the particles in one vectorized run.
    :param strict_enumeration_warning: warn about enumerated guide sites.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> abs(RenyiELBO(alpha=0.5, num_particles=4).loss(model, guide))  # q = p: every weight is 1
    0.0
    """

    def __init__(
        self,
        alpha: float = 0,
        num_particles: int = 2,
        max_plate_nesting: float = float("inf"),
        max_iarange_nesting: float | None = None,
        vectorize_particles: bool = False,
        strict_enumeration_warning: bool = True,
    ) -> None:
        if max_iarange_nesting is not None:
            warn_at_caller("max_iarange_nesting is deprecated; use max_plate_nesting instead", DeprecationWarning)
            max_plate_nesting = max_iarange_nesting
        if alpha == 1:
            # Pyro's text, missing space included.
            raise ValueError("The order alpha should not be equal to 1. Please use Trace_ELBO classfor the case alpha = 1.")
        self.alpha = alpha
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=vectorize_particles,
            strict_enumeration_warning=strict_enumeration_warning,
        )

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)
        if is_validation_enabled():
            check_if_enumerated(guide_trace)
        return model_trace, guide_trace

    def _particles(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
        """``(elbos, surrogate_elbos, has_params)`` stacked over the particles (dim 0).

        Each particle's terms keep the plates shared by all its sites. ``None`` when no
        particle has a sample site.
        """
        elbos: list[torch.Tensor | float] = []
        surrogates: list[torch.Tensor | float] = []
        has_params = False
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo, surrogate = self._particle(model_trace, guide_trace)
            elbos.append(elbo)
            surrogates.append(surrogate)
            has_params = has_params or any(
                site["type"] == "param" for tr in (model_trace, guide_trace) for site in tr.nodes.values()
            )
        like = next((e for e in elbos if isinstance(e, torch.Tensor)), None)
        if like is None:
            return None
        # A particle without sample sites contributes zeros shaped like the others.
        elbo_t = [e if isinstance(e, torch.Tensor) else torch.zeros_like(like) for e in elbos]
        surrogate_t = [s if isinstance(s, torch.Tensor) else torch.zeros_like(like) for s in surrogates]
        if self.vectorize_particles and self.num_particles > 1:
            return elbo_t[0], surrogate_t[0], has_params
        return torch.stack(elbo_t), torch.stack(surrogate_t), has_params

    def _particle(self, model_trace: Trace, guide_trace: Trace) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        elbo: torch.Tensor | float = 0.0
        surrogate: torch.Tensor | float = 0.0
        sum_dims = get_dependent_plate_dims(model_trace.nodes.values())
        for site in model_trace.nodes.values():
            if site["type"] == "sample":
                log_prob_sum = torch_sum(site["log_prob"], sum_dims)
                elbo = elbo + log_prob_sum.detach()
                surrogate = surrogate + log_prob_sum
        for site in guide_trace.nodes.values():
            if site["type"] != "sample":
                continue
            _, score_function, entropy_term = site["score_parts"]
            log_prob_sum = torch_sum(site["log_prob"], sum_dims)
            elbo = elbo - log_prob_sum.detach()
            if not is_identically_zero(entropy_term):
                surrogate = surrogate - log_prob_sum
                if not is_identically_zero(score_function):
                    raise NotImplementedError("RenyiELBO does not support partially reparameterized guide sites")
            if not is_identically_zero(score_function):
                surrogate = surrogate + (self.alpha / (1.0 - self.alpha)) * log_prob_sum
        return elbo, surrogate

    def _bound(self, elbos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_weights, log_mean_weight)``: the scaled particle ELBOs and their log mean exp."""
        log_weights = (1.0 - self.alpha) * elbos
        log_mean_weight = torch.logsumexp(log_weights, dim=0, keepdim=True) - math.log(self.num_particles)
        return log_weights, log_mean_weight

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """An estimate of the negative Rényi bound (computed without autograd)."""
        with torch.no_grad():
            particles = self._particles(model, guide, args, kwargs)
            elbo = 0.0
            if particles is not None:
                _, log_mean_weight = self._bound(particles[0])
                elbo = log_mean_weight.sum().item() / (1.0 - self.alpha)
        loss = -elbo
        warn_if_nan(loss, "loss")
        return loss

    def _loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[float, torch.Tensor | None]:
        particles = self._particles(model, guide, args, kwargs)
        if particles is None:
            return 0.0, None
        elbos, surrogates, has_params = particles
        log_weights, log_mean_weight = self._bound(elbos)
        loss = -log_mean_weight.sum().item() / (1.0 - self.alpha)
        if not (has_params and surrogates.requires_grad):
            return loss, None
        normalized_weights = (log_weights - log_mean_weight).exp()
        surrogate_loss = -(normalized_weights * surrogates).sum() / self.num_particles
        return loss, surrogate_loss

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The negative bound, as a tensor whose gradient is the estimator's.

        Pyro's ``RenyiELBO`` has no such method; this one follows :meth:`loss_and_grads`.
        """
        loss, surrogate_loss = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        warn_if_nan(loss, "loss")
        if surrogate_loss is None:
            return torch.tensor(loss)
        return loss + (surrogate_loss - surrogate_loss.detach())

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The negative bound; backpropagates the importance-weighted surrogate into the params."""
        loss, surrogate_loss = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        if surrogate_loss is not None:
            torch.autograd.backward(surrogate_loss)
        warn_if_nan(loss, "loss")
        return loss

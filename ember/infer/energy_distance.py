"""``EnergyDistance``: a likelihood-free loss comparing posterior predictive draws with the data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ember.distributions.util import scale_and_mask
from ember.infer.elbo import ELBO
from ember.infer.util import check_model_guide_match, check_site_shape, is_validation_enabled, validation_enabled
from ember.poutine.handlers import replay, trace, uncondition
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember.primitives import plate
from ember._util import warn_if_nan

__all__ = ["EnergyDistance"]

Model = Callable[..., Any]


def _squared_error(x: torch.Tensor, y: torch.Tensor, scale: Any, mask: Any) -> torch.Tensor:
    """``sum ||x - y||^2`` per particle, over ``(particle, batch, event)``-shaped inputs."""
    diff = x - y
    if getattr(scale, "shape", ()) or getattr(mask, "shape", ()):
        return scale_and_mask(torch.einsum("nbe,nbe->nb", diff, diff), scale, mask).sum(-1)
    return scale_and_mask(torch.einsum("nbe,nbe->n", diff, diff), scale, mask)


class EnergyDistance:
    r"""The posterior predictive energy distance, optionally regularised by the prior.

    With latent draws :math:`Z, Z' \sim q(z|x)` and predictive draws :math:`X \sim p(x|Z)`,
    :math:`X' \sim p(x|Z')`, the loss is

    .. math:: E\|X - x\|^\beta - \tfrac12 E\|X - X'\|^\beta - \lambda E \log p(Z),

    a strictly proper scoring rule for data with a finite :math:`\beta`-th moment. Every pair of
    the ``num_particles`` vectorized draws enters the second term. The guide must be fully
    reparameterized and the likelihoods reparameterized; latent model sites may be
    anything. The model needs static structure.

    :param beta: the exponent, in ``(0, 2)``; small values suit heavy tails.
    :param prior_scale: :math:`\lambda \ge 0`; with 0 the model's log densities are never
        computed, and its params get no gradient.
    :param num_particles: draws per estimate, at least 2.
    :param max_plate_nesting: the number of plate dims; guessed from one run if infinite.
    :raises ValueError: on a ``beta``, ``prior_scale`` or ``num_particles`` out of range.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model(x):
    ...     loc = ember.sample("loc", dist.Normal(0.0, 10.0))
    ...     with ember.plate("data", len(x)):
    ...         ember.sample("x", dist.Normal(loc, 1.0), obs=x)
    >>> guide = lambda x: ember.sample("loc", dist.Normal(ember.param("q", torch.tensor(0.0)), 0.1))
    >>> ember.clear_param_store()
    >>> loss = EnergyDistance(num_particles=4)(model, guide, torch.zeros(3))
    >>> loss.shape, loss.requires_grad
    (torch.Size([]), True)
    """

    def __init__(
        self,
        beta: float = 1.0,
        prior_scale: float = 0.0,
        num_particles: int = 2,
        max_plate_nesting: float = float("inf"),
    ) -> None:
        if not (isinstance(beta, (float, int)) and 0 < beta < 2):
            raise ValueError(f"Expected beta in (0,2), actual {beta}")
        if not (isinstance(prior_scale, (float, int)) and prior_scale >= 0):
            raise ValueError(f"Expected prior_scale >= 0, actual {prior_scale}")
        if not (isinstance(num_particles, int) and num_particles >= 2):
            raise ValueError(f"Expected num_particles >= 2, actual {num_particles}")
        self.beta = beta
        self.prior_scale = prior_scale
        self.num_particles = num_particles
        self.vectorize_particles = True
        self.max_plate_nesting = max_plate_nesting

    def _pow(self, x: torch.Tensor) -> torch.Tensor:
        return x.sqrt() if self.beta == 1 else x.pow(self.beta / 2)

    def _get_traces(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Trace, Trace]:
        if self.max_plate_nesting == float("inf"):
            # Some likelihoods have no density: guess without computing log densities.
            with validation_enabled(False):
                ELBO._guess_max_plate_nesting(self, model, guide, args, kwargs)  # type: ignore[arg-type]  # reads and sets only the options EnergyDistance has
        vectorize = plate("num_particles_vectorized", self.num_particles, dim=-int(self.max_plate_nesting))
        with trace() as guide_tracer, vectorize:
            guide(*args, **kwargs)
        guide_trace = guide_tracer.trace
        # The model draws its observed sites too: those are the posterior predictive samples.
        with trace() as model_tracer, uncondition():
            with replay(trace=guide_trace), vectorize:
                model(*args, **kwargs)
        model_trace = model_tracer.trace
        for site in model_trace.nodes.values():
            if site["type"] == "sample" and site["infer"].get("was_observed", False):
                site["is_observed"] = True
        validate = is_validation_enabled()
        if validate:
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting)
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)
        if validate:
            for tr, what, observed in ((guide_trace, "guides", False), (model_trace, "likelihoods", True)):
                for site in tr.nodes.values():
                    if site["type"] == "sample" and site["is_observed"] == observed:
                        warn_if_nan(site["value"], site["name"] or "")
                        if not getattr(site["fn"], "has_rsample", False):
                            qualifier = "fully " if what == "guides" else ""
                            raise ValueError(
                                f"EnergyDistance requires {qualifier}reparametrized {what}; "
                                f"site {site['name']!r} is not reparameterized"
                            )
        if self.prior_scale > 0:
            model_trace.compute_log_prob(site_filter=lambda name, site: not site["is_observed"])
            if validate:
                for site in model_trace.nodes.values():
                    if site["type"] == "sample" and not site["is_observed"]:
                        check_site_shape(site, self.max_plate_nesting)
        return guide_trace, model_trace

    def __call__(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The surrogate loss, whose gradient (by autograd) estimates the loss's gradient.

        :raises ValueError: if the model observes nothing.
        """
        guide_trace, model_trace = self._get_traces(model, guide, args, kwargs)
        observed = [
            (name, site)
            for name, site in model_trace.nodes.items()
            if site["type"] == "sample" and site["is_observed"]
        ]
        if not observed:
            raise ValueError("Found no observations")
        n = self.num_particles
        # Each unordered pair of distinct particles once.
        pairs = torch.ones(n, n).tril(-1).nonzero()
        error: torch.Tensor | float = 0.0  # sum over sites of ||X - x||^2, per particle
        spread: torch.Tensor | float = 0.0  # sum over sites of ||X - X'||^2, per pair
        for name, site in observed:
            obs = site["infer"]["obs"]
            assert obs is not None
            sample = site["value"]
            assert sample is not None
            scale: Any = site["scale"]
            mask: Any = site["mask"]
            fn: Any = site["fn"]
            event_dim = fn.event_dim
            batch_shape = obs.shape[: obs.dim() - event_dim]
            event_shape = obs.shape[obs.dim() - event_dim :]
            if getattr(scale, "shape", ()):
                scale = scale.expand(batch_shape).reshape(-1)
            if getattr(mask, "shape", ()):
                mask = mask.expand(batch_shape).reshape(-1)
            obs = obs.reshape(batch_shape.numel(), event_shape.numel())
            sample = sample.reshape(n, batch_shape.numel(), event_shape.numel())
            error = error + _squared_error(sample, obs, scale, mask)
            error_pairs = sample[pairs]
            spread = spread + _squared_error(error_pairs[:, 0], error_pairs[:, 1], scale, mask)
        energy = self._pow(torch.as_tensor(error)).mean() - 0.5 * self._pow(torch.as_tensor(spread)).mean()
        log_prior: torch.Tensor | float = 0.0
        if self.prior_scale > 0:
            for site in model_trace.nodes.values():
                if site["type"] == "sample" and not site["is_observed"]:
                    log_prior = log_prior + site["log_prob_sum"]
        loss = energy - self.prior_scale * log_prior
        warn_if_nan(loss, "loss")
        return loss

    def loss(self, *args: Any, **kwargs: Any) -> float:
        """Not defined: :class:`EnergyDistance` has only the surrogate loss (call the object)."""
        raise NotImplementedError("EnergyDistance implements only surrogate loss")

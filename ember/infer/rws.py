"""Reweighted wake-sleep (Bornschein and Bengio, 2015; Le et al., 2019).

The model learns from the importance-weighted bound (wake-theta); the guide learns to
propose well from self-normalised importance weights (wake-phi), from the model's own
dreams (sleep-phi), or from a mixture of the two set by ``insomnia``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ember.infer.elbo import ELBO, Model, TracePair
from ember.infer.enum import get_importance_trace
from ember.infer.util import check_if_enumerated, check_model_guide_match, is_validation_enabled
from ember.poutine.handlers import replay, trace, uncondition
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember.primitives import plate
from ember._util import warn_if_nan

__all__ = ["ReweightedWakeSleep"]


def _matched_guide_trace(model_trace: Trace, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Trace:
    """The guide's trace replayed on a joint draw of the model, its observations passed in.

    The model's formerly observed sites are marked observed again and handed to the guide as
    ``observations={name: value}`` (so an amortised guide can read the dreamt data).
    """
    observations: dict[str, torch.Tensor] = {}
    for name in model_trace.stochastic_nodes + model_trace.observation_nodes:
        site = model_trace.nodes[name]
        if "was_observed" in site["infer"]:
            site["is_observed"] = True
            observations[name] = site["value"]
    guide_trace = trace(replay(guide, trace=model_trace)).get_trace(*args, **{**kwargs, "observations": observations})
    check_model_guide_match(model_trace, guide_trace)
    return prune_subsample_sites(guide_trace)


class ReweightedWakeSleep(ELBO):
    r"""Reweighted wake-sleep: separate losses for the model and for the guide.

    :meth:`loss` and :meth:`loss_and_grads` return ``(wake_theta_loss, phi_loss)``: the
    negative importance-weighted bound :math:`-\log \frac1K\sum_k p(x, z_k)/q(z_k)`, and
    ``insomnia`` times the wake-phi loss :math:`-\sum_k \bar w_k \log q(z_k)` plus
    ``1 - insomnia`` times the sleep-phi loss :math:`-E_{p(x,z)} \log q(z|x)`. Guide samples are
    detached, so the guide need not be reparameterized (discrete latents are fine). With
    sleep, the guide is called with an extra ``observations`` keyword: a dict of the dreamt
    values of the model's observed sites.

    :param num_particles: particles for the wake phases, at least 2.
    :param insomnia: the weight of wake-phi against sleep-phi, in ``[0, 1]``.
    :param model_has_params: whether to compute the wake-theta loss when ``insomnia == 0``.
    :param num_sleep_particles: particles for sleep-phi (default ``num_particles``).
    :param vectorize_particles: draw particles at once in an outermost plate.
    :param max_plate_nesting: the number of plate dims; guessed from one run if infinite.
    :param strict_enumeration_warning: as for :class:`~ember.infer.elbo.ELBO`.
    :raises AssertionError: with fewer than two particles or ``insomnia`` outside ``[0, 1]``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model(x):
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    ...     ember.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x, observations=None):
    ...     ember.sample("z", dist.Normal(ember.param("m", torch.tensor(0.0)), 1.0))
    >>> ember.clear_param_store()
    >>> theta_loss, phi_loss = ReweightedWakeSleep(num_particles=4, insomnia=0.5).loss(model, guide, torch.tensor(1.0))
    >>> isinstance(theta_loss, torch.Tensor) and theta_loss.shape == ()
    True
    """

    def __init__(
        self,
        num_particles: int = 2,
        insomnia: float = 1.0,
        model_has_params: bool = True,
        num_sleep_particles: int | None = None,
        vectorize_particles: bool = True,
        max_plate_nesting: float = float("inf"),
        strict_enumeration_warning: bool = True,
    ) -> None:
        if not num_particles > 1:
            raise AssertionError(
                f"Reweighted Wake Sleep needs to be run with more than one particle, got num_particles={num_particles}"
            )
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=vectorize_particles,
            strict_enumeration_warning=strict_enumeration_warning,
        )
        self.insomnia = insomnia
        self.model_has_params = model_has_params
        self.num_sleep_particles = num_particles if num_sleep_particles is None else num_sleep_particles
        if not 0 <= insomnia <= 1:
            raise AssertionError(f"insomnia should be in [0, 1], got {insomnia}")

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = get_importance_trace(
            "flat", self.max_plate_nesting, model, guide, args, kwargs, detach=True
        )
        if is_validation_enabled():
            check_if_enumerated(guide_trace)
        return model_trace, guide_trace

    def _per_particle(self, tr: Trace) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        for site in tr.nodes.values():
            if site["type"] == "sample":
                if self.vectorize_particles:
                    total = total + site["log_prob"].reshape(self.num_particles, -1).sum(-1)
                else:
                    total = total + site["log_prob_sum"]
        return total

    def _wake(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(wake_theta_loss, log_weights, log_q)``, one weight per particle."""
        log_joints: list[torch.Tensor] = []
        log_qs: list[torch.Tensor] = []
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            log_joints.append(torch.as_tensor(self._per_particle(model_trace)))
            log_qs.append(torch.as_tensor(self._per_particle(guide_trace)))
        log_joint = log_joints[0] if self.vectorize_particles else torch.stack(log_joints)
        log_q = log_qs[0] if self.vectorize_particles else torch.stack(log_qs)
        log_weights = log_joint - log_q.detach()
        wake_theta_loss = -(torch.logsumexp(log_weights, dim=0) - math.log(self.num_particles)).sum()
        warn_if_nan(wake_theta_loss, "wake theta loss")
        return wake_theta_loss, log_weights, log_q

    def _sleep_phi_loss(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> torch.Tensor:
        dream: Model = uncondition(model)
        propose = guide
        if self.vectorize_particles:
            if self.max_plate_nesting == float("inf"):
                self._guess_max_plate_nesting(dream, propose, args, kwargs)
            dream = self._vectorized_num_sleep_particles(dream)
            propose = self._vectorized_num_sleep_particles(guide)
        log_q: torch.Tensor | float = 0.0
        for _ in range(1 if self.vectorize_particles else self.num_sleep_particles):
            model_trace = trace(dream).get_trace(*args, **kwargs)
            model_trace.detach_()
            log_q = log_q + _matched_guide_trace(model_trace, propose, args, kwargs).log_prob_sum()
        loss = torch.as_tensor(-log_q / self.num_sleep_particles)
        warn_if_nan(loss, "sleep phi loss")
        return loss

    def _loss(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        # Pyro's placeholder when the wake-theta loss is skipped.
        wake_theta_loss = torch.tensor(100.0)
        wake_phi_loss: torch.Tensor | None = None
        if self.model_has_params or self.insomnia > 0.0:
            wake_theta_loss, log_weights, log_q = self._wake(model, guide, args, kwargs)
            if self.insomnia > 0:
                normalised = (log_weights - torch.logsumexp(log_weights, dim=0)).exp().detach()
                wake_phi_loss = -(normalised * log_q).sum()
                warn_if_nan(wake_phi_loss, "wake phi loss")
        if self.insomnia == 1:
            assert wake_phi_loss is not None
            return wake_theta_loss, wake_phi_loss
        sleep_phi_loss = self._sleep_phi_loss(model, guide, args, kwargs)
        if self.insomnia == 0:
            return wake_theta_loss, sleep_phi_loss
        assert wake_phi_loss is not None
        return wake_theta_loss, self.insomnia * wake_phi_loss + (1.0 - self.insomnia) * sleep_phi_loss

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]  # Pyro returns the pair of losses here
        """``(wake_theta_loss, phi_loss)``, computed without gradients."""
        with torch.no_grad():
            return self._loss(model, guide, args, kwargs)

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> tuple[float, float]:  # type: ignore[override]  # as above
        """``(wake_theta_loss, phi_loss)`` as floats; backpropagates their sum into the params."""
        wake_theta_loss, phi_loss = self._loss(model, guide, args, kwargs)
        torch.autograd.backward(wake_theta_loss + phi_loss)
        return wake_theta_loss.detach().item(), phi_loss.detach().item()

    def _vectorized_num_sleep_particles(self, fn: Model) -> Model:
        """``fn`` in an outermost plate over the sleep particles (``fn`` itself for one)."""
        if self.num_sleep_particles == 1:
            return fn
        return plate("num_sleep_particles_vectorized", self.num_sleep_particles, dim=-int(self.max_plate_nesting))(fn)

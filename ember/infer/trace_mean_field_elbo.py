"""``TraceMeanField_ELBO``: the ELBO with analytic KL divergences wherever they are known."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.distributions import kl_divergence

from ember.distributions.util import scale_and_mask
from ember.infer.elbo import Model, TracePair, _tensor
from ember.infer.trace_elbo import JitTrace_ELBO, Trace_ELBO
from ember.infer.util import check_fully_reparametrized, is_validation_enabled, torch_item
from ember.poutine.trace_struct import Trace
from ember._util import warn_at_caller

__all__ = ["JitTraceMeanField_ELBO", "TraceMeanField_ELBO"]


def _check_mean_field_requirement(model_trace: Trace, guide_trace: Trace) -> None:
    """Warn unless the shared sample sites come in the same order in model and guide.

    Same order is sufficient, not necessary, for the mean-field estimator to be correct.
    """
    model_sites = [name for name, site in model_trace.nodes.items() if site["type"] == "sample" and name in guide_trace]
    guide_sites = [name for name, site in guide_trace.nodes.items() if site["type"] == "sample" and name in model_trace]
    assert set(model_sites) == set(guide_sites)
    if model_sites != guide_sites:
        warn_at_caller(
            "Failed to verify mean field restriction on the guide. To eliminate this warning, "
            "ensure model and guide sites occur in the same order.\n"
            "Model sites:\n  " + "\n  ".join(model_sites) + "Guide sites:\n  " + "\n  ".join(guide_sites)
        )


class TraceMeanField_ELBO(Trace_ELBO):
    """The ELBO of a mean-field, reparameterized guide, with ``KL(q || p)`` computed exactly.

    At each latent site the term ``log p(z) - log q(z)`` is replaced by ``-KL(q || p)`` when
    :func:`torch.distributions.kl_divergence` knows the pair, and estimated from the sample
    otherwise. Every guide site must be reparameterized. The guide must factorize over the
    latent sites (or, more precisely, no latent's parents in the model may be its
    descendants in the guide); a guide whose sites run in another order than the model's
    gets a warning. Options are those of :class:`~ember.infer.elbo.ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(1.0, 1.0))
    >>> TraceMeanField_ELBO().loss(model, guide)  # KL(N(1, 1) || N(0, 1)) = 1/2
    0.5
    """

    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        model_trace, guide_trace = super()._get_trace(model, guide, args, kwargs)
        if is_validation_enabled():
            _check_mean_field_requirement(model_trace, guide_trace)
        return model_trace, guide_trace

    def _elbo_value(self, model_trace: Trace, guide_trace: Trace) -> float:
        return torch_item(self._particle(model_trace, guide_trace)[0])

    def _elbo_value_of_particle(self, model_trace: Trace, guide_trace: Trace, elbo: torch.Tensor | float) -> float:
        return torch_item(elbo)

    def _particle(self, model_trace: Trace, guide_trace: Trace) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        validate = is_validation_enabled()
        elbo: torch.Tensor | float = 0.0
        for name, model_site in model_trace.nodes.items():
            if model_site["type"] != "sample":
                continue
            if model_site["is_observed"]:
                elbo = elbo + model_site["log_prob_sum"]
                continue
            guide_site = guide_trace.nodes[name]
            if validate:
                check_fully_reparametrized(guide_site)
            try:
                # A registered KL may return a number (e.g. a masked-out pair), not only a tensor.
                kl_qp: torch.Tensor | float = kl_divergence(guide_site["fn"], model_site["fn"])  # type: ignore[arg-type]  # Message.fn is a distribution at sample sites
            except NotImplementedError:
                elbo = elbo + model_site["log_prob_sum"] - _tensor(guide_site["score_parts"].entropy_term).sum()
                continue
            kl_qp = scale_and_mask(kl_qp, scale=guide_site["scale"], mask=guide_site["mask"])
            if isinstance(kl_qp, torch.Tensor):
                fn: Any = guide_site["fn"]
                assert torch._C._get_tracing_state() or kl_qp.shape == fn.batch_shape
                elbo = elbo - kl_qp.sum()
            else:
                elbo = elbo - kl_qp * torch.Size(getattr(guide_site["fn"], "batch_shape")).numel()
        # Auxiliary guide sites have no model counterpart: only their entropy enters.
        for name, guide_site in guide_trace.nodes.items():
            if guide_site["type"] == "sample" and name not in model_trace:
                assert guide_site["infer"].get("is_auxiliary")
                if validate:
                    check_fully_reparametrized(guide_site)
                elbo = elbo - _tensor(guide_site["score_parts"].entropy_term).sum()
        return elbo, elbo


class JitTraceMeanField_ELBO(JitTrace_ELBO, TraceMeanField_ELBO):
    """:class:`TraceMeanField_ELBO` with the loss compiled by :func:`torch.jit.trace`.

    The restrictions of :class:`~ember.infer.trace_elbo.JitTrace_ELBO` apply.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(1.0)), 1.0))
    >>> ember.clear_param_store()
    >>> elbo = JitTraceMeanField_ELBO(ignore_jit_warnings=True)
    >>> [elbo.loss_and_grads(model, guide) for _ in range(2)], ember.param("loc").grad  # grad of KL: 1 per step
    ([0.5, 0.5], tensor(2.))
    """

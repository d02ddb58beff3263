"""Export of an MCMC run to :class:`arviz.InferenceData` (arviz is an optional extra)."""

from __future__ import annotations

from typing import Any

import torch

from ember import poutine
from ember.infer.predictive import Predictive

_STAT_NAMES = {
    "diverging": "diverging",
    "energy": "energy",
    "step_size": "step_size",
    "tree_depth": "tree_depth",
    "accept_prob": "acceptance_rate",
    "num_steps": "n_steps",
}


def _import_arviz() -> Any:
    try:
        import arviz
    except ImportError as e:
        raise ImportError(
            "MCMC.to_arviz() needs the optional dependency arviz: pip install 'ember[arviz]' (or pip install arviz)"
        ) from e
    return arviz


def _log_likelihood(mcmc: Any, samples: dict[str, torch.Tensor]) -> dict[str, Any]:
    model = getattr(mcmc.kernel, "model", None)
    if model is None or not samples:
        return {}
    C, S = next(iter(samples.values())).shape[:2]
    flat = {k: v.reshape((C * S,) + v.shape[2:]) for k, v in samples.items()}
    with poutine.block():
        tr = Predictive(model, posterior_samples=flat, parallel=True).get_vectorized_trace(*mcmc._args, **mcmc._kwargs)
    out = {}
    for name, site in tr.nodes.items():
        if site["type"] == "sample" and site["is_observed"] and not site["infer"].get("_deterministic", False):
            fn: Any = site["fn"]
            log_p = fn.log_prob(site["value"]).detach()
            if log_p.dim() and log_p.shape[0] == C * S:
                log_p = log_p.reshape((C, S) + log_p.shape[1:])
            else:
                log_p = log_p.expand((C * S,) + log_p.shape).reshape((C, S) + log_p.shape)
            out[name] = log_p.numpy()
    return out


def to_inference_data(mcmc: Any) -> Any:
    """The run of ``mcmc`` (an :class:`~ember.infer.mcmc.api.MCMC`) as ``arviz.InferenceData``: ``posterior``, ``sample_stats``, ``log_likelihood``
    (observed sites, per draw) and ``observed_data``."""
    az = _import_arviz()
    samples = mcmc.get_samples(group_by_chain=True)
    posterior = {k: v.detach().numpy() for k, v in samples.items()}
    sample_stats: dict[str, Any] = {}
    if mcmc._stats and mcmc._stats[0]:
        for key, name in _STAT_NAMES.items():
            if key in mcmc._stats[0]:
                sample_stats[name] = torch.stack([s[key] for s in mcmc._stats]).numpy()
    observed: dict[str, Any] = {}
    trace = getattr(mcmc.kernel, "_prototype_trace", None)
    model = getattr(mcmc.kernel, "model", None)
    if model is not None:
        with poutine.block():
            trace = poutine.trace(model).get_trace(*mcmc._args, **mcmc._kwargs)
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and site["is_observed"] and not site["infer"].get("_deterministic", False):
                observed[name] = site["value"].detach().numpy()
    groups: dict[str, Any] = {"posterior": posterior}
    if sample_stats:
        groups["sample_stats"] = sample_stats
    log_likelihood = _log_likelihood(mcmc, samples)
    if log_likelihood:
        groups["log_likelihood"] = log_likelihood
    if observed:
        groups["observed_data"] = observed
    return az.from_dict(**groups)

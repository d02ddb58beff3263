"""Which sample sites a model's factors couple, found by autograd (what Pyro's ``get_dependencies`` reports).

Each latent value is replaced by a fresh leaf tensor; a site's log density depends on a latent
exactly when its gradient with respect to that leaf exists (structurally, as Pyro's provenance
tracking sees it). Discrete latents cannot carry gradients and are treated as independent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ember.poutine.handlers import block, condition, trace
from ember.poutine.util import site_is_subsample

Dependencies = dict[str, dict[str, set[str]]]


def _get_dependencies(model: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Dependencies]:
    """``{"prior_dependencies": {d: {u: set()}}, "posterior_dependencies": {a: {b: set()}}}``.

    ``prior_dependencies[d]`` holds ``d`` and every latent its log density reads;
    ``posterior_dependencies[a]`` holds ``a`` and every later site sharing a factor with it.
    """
    with block():
        prototype = trace(model).get_trace(*args, **kwargs)
    sites = [(name, site) for name, site in prototype.nodes.items() if site["type"] == "sample" and not site_is_subsample(site)]
    order = {name: i for i, (name, _) in enumerate(sites)}
    leaves = {
        name: site["value"].detach().requires_grad_()
        for name, site in sites
        if not site["is_observed"] and torch.is_floating_point(site["value"])
    }
    with block(), torch.enable_grad():
        replayed = trace(condition(model, data=leaves)).get_trace(*args, **kwargs)
        names = list(leaves)
        prior: Dependencies = {}
        for name, _ in sites:
            node: Any = replayed.nodes[name]
            log_prob = node["fn"].log_prob(node["value"]).sum()
            upstream: dict[str, set[str]] = {name: set()}
            if log_prob.requires_grad and names:
                grads = torch.autograd.grad(log_prob, [leaves[n] for n in names], allow_unused=True)
                upstream.update({n: set() for n, g in zip(names, grads) if g is not None and n != name})
            prior[name] = upstream
    posterior: Dependencies = {}
    for name, upstream in prior.items():
        factor = sorted(upstream, key=order.__getitem__)
        for i, first in enumerate(factor):
            if first in leaves or not prototype.nodes[first]["is_observed"]:
                entry = posterior.setdefault(first, {first: set()})
                entry.update({later: set() for later in factor[i + 1 :]})
    return {"prior_dependencies": prior, "posterior_dependencies": posterior}

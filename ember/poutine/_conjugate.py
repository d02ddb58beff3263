"""Conjugate families for ``collapse``: natural parameters, sufficient statistics, marginals."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.distributions import Bernoulli, Beta, Binomial, Categorical, Dirichlet, Gamma, Independent
from torch.distributions import Multinomial, Normal, Poisson

from ember.poutine._collapsed_value import CollapsedValue

def _sum_to_shape(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``tensor`` over the dims that broadcasting ``shape`` to it added or expanded."""
    extra = tensor.dim() - len(shape)
    if extra > 0:
        tensor = tensor.sum(list(range(extra)))
    expanded = [i for i, size in enumerate(shape) if size == 1 and tensor.shape[i] != 1]
    if expanded:
        tensor = tensor.sum(expanded, keepdim=True)
    return tensor.expand(shape)


# Conjugate families. Each latent keeps natural parameters; an observation adds its
# sufficient statistics (same keys) plus a base-measure term, and the marginal density is
# log_normalizer(posterior) - log_normalizer(prior) + base.


def _natural_params(prior: Any, shape: torch.Size) -> tuple[str | None, dict[str, torch.Tensor]]:
    if isinstance(prior, Normal):
        precision = prior.scale.pow(-2)
        return "Normal", {"precision": precision.expand(shape), "eta": (prior.loc * precision).expand(shape)}
    if isinstance(prior, Beta):
        return "Beta", {"a": prior.concentration1.expand(shape), "b": prior.concentration0.expand(shape)}
    if isinstance(prior, Gamma):
        return "Gamma", {"a": prior.concentration.expand(shape), "b": prior.rate.expand(shape)}
    if isinstance(prior, Dirichlet):
        return "Dirichlet", {"a": prior.concentration.expand(shape)}
    return None, {}


def _log_normalizer(family: str, p: dict[str, torch.Tensor]) -> torch.Tensor:
    if family == "Normal":
        return 0.5 * (math.log(2 * math.pi) - p["precision"].log()) + p["eta"].pow(2) / (2 * p["precision"])
    if family == "Beta":
        return torch.lgamma(p["a"]) + torch.lgamma(p["b"]) - torch.lgamma(p["a"] + p["b"])
    if family == "Gamma":
        return torch.lgamma(p["a"]) - p["a"] * p["b"].log()
    return torch.lgamma(p["a"]).sum(-1) - torch.lgamma(p["a"].sum(-1))


def _posterior(family: str, p: dict[str, torch.Tensor]) -> torch.distributions.Distribution:
    if family == "Normal":
        return Normal(p["eta"] / p["precision"], p["precision"].rsqrt())
    if family == "Beta":
        return Beta(p["a"], p["b"])
    if family == "Gamma":
        return Gamma(p["a"], p["b"])
    return Dirichlet(p["a"])


# (prior family, likelihood class) -> (the likelihood parameter that must be the latent,
# the likelihood parameters that must not depend on it). A distribution built from the
# latent as that parameter may cache other stand-ins computed from it (``logits`` from
# ``probs``); those are harmless, so only these parameters are checked.
_CHILDREN: dict[tuple[str, type], tuple[str, tuple[str, ...]]] = {
    ("Normal", Normal): ("loc", ("scale",)),
    ("Beta", Bernoulli): ("probs", ()),
    ("Beta", Binomial): ("probs", ("total_count",)),
    ("Gamma", Poisson): ("rate", ()),
    ("Dirichlet", Categorical): ("probs", ()),
    ("Dirichlet", Multinomial): ("probs", ()),
}


def _statistics(child: Any, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-observation sufficient statistics and base-measure log density of ``child`` at ``x``."""
    if isinstance(child, Normal):
        precision = child.scale.pow(-2).expand_as(x)
        base = -0.5 * (x.pow(2) * precision + math.log(2 * math.pi) - precision.log())
        return {"precision": precision, "eta": x * precision}, base
    if isinstance(child, Bernoulli):
        return {"a": x, "b": 1 - x}, torch.zeros_like(x)
    if isinstance(child, Binomial):
        n = child.total_count.expand_as(x)
        base = torch.lgamma(n + 1) - torch.lgamma(x + 1) - torch.lgamma(n - x + 1)
        return {"a": x, "b": n - x}, base
    if isinstance(child, Poisson):
        return {"a": x, "b": torch.ones_like(x)}, -torch.lgamma(x + 1)
    num_categories = child.probs.size(-1)
    if isinstance(child, Categorical):
        counts = torch.nn.functional.one_hot(x.long(), num_categories).to(child.probs.dtype)
        return {"a": counts}, torch.zeros(x.shape, dtype=counts.dtype, device=x.device)
    base = torch.lgamma(x.sum(-1) + 1) - torch.lgamma(x + 1).sum(-1)
    return {"a": x}, base


class _Latent:
    """A collapsed latent site: its prior's natural parameters and the statistics seen so far."""

    def __init__(self, name: str, prior: Any) -> None:
        self.name = name
        self.prior = prior
        try:
            mean = prior.mean.detach()
        except NotImplementedError:
            mean = prior.sample()
        self.shape: torch.Size = mean.shape
        self.stand_in = CollapsedValue._mark(mean.clone(), frozenset([name]), "value")
        base_prior = prior
        while isinstance(base_prior, Independent):
            base_prior = base_prior.base_dist
        self.base_prior = base_prior
        self.family, self.prior_params = _natural_params(base_prior, self.shape)
        self.elem_shape = self.shape[:-1] if self.family == "Dirichlet" else self.shape
        self.stats = {key: torch.zeros_like(value) for key, value in self.prior_params.items()}
        self.base: torch.Tensor = mean.new_zeros(self.elem_shape)

    def posterior_params(self) -> dict[str, torch.Tensor]:
        return {key: value + self.stats[key] for key, value in self.prior_params.items()}

    def log_marginal(self) -> torch.Tensor:
        if self.family is None:
            return self.base  # no observation depends on it: it integrates to one
        prior = _log_normalizer(self.family, self.prior_params)
        return _log_normalizer(self.family, self.posterior_params()) - prior + self.base

    def draw(self) -> torch.Tensor:
        if self.family is None:
            draw: torch.Tensor = self.prior.sample()
            return draw
        return _posterior(self.family, self.posterior_params()).rsample()

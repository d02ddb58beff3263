"""Closed-form products of a conjugate prior with a likelihood of the same family.

``prior.conjugate_update(likelihood)`` returns ``(posterior, log_normalizer)`` such that
``prior.log_prob(z) + likelihood.log_prob(z) == posterior.log_prob(z) + log_normalizer``
for every ``z``: the posterior after observing evidence expressed as a density in ``z``, and
the log of the evidence's integral against the prior. ``ConjugateReparam`` uses it. The
classes attach these as their ``conjugate_update`` method (Pyro marks it experimental).
"""

from __future__ import annotations

from typing import Any

import torch

from ember.distributions.util import sum_rightmost

__all__ = ["beta_update", "dirichlet_update", "expanded_update", "gamma_update", "independent_update", "masked_update"]


def _log_beta_normalizer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # -log B(a, b): the Beta density's normalizing term.
    return (a + b).lgamma() - a.lgamma() - b.lgamma()


def beta_update(self: Any, other: Any) -> tuple[Any, torch.Tensor]:
    """Beta(a1, b1) * Beta(a2, b2) is proportional to Beta(a1 + a2 - 1, b1 + b2 - 1)."""
    if not isinstance(other, type(self)):
        raise TypeError(f"Beta.conjugate_update needs a Beta likelihood, got {type(other).__name__}")
    a = self.concentration1 + other.concentration1 - 1
    b = self.concentration0 + other.concentration0 - 1
    posterior = type(self)(a, b)
    log_normalizer = (
        _log_beta_normalizer(self.concentration1, self.concentration0)
        + _log_beta_normalizer(other.concentration1, other.concentration0)
        - _log_beta_normalizer(a, b)
    )
    return posterior, log_normalizer


def gamma_update(self: Any, other: Any) -> tuple[Any, torch.Tensor]:
    """Gamma(k1, r1) * Gamma(k2, r2) is proportional to Gamma(k1 + k2 - 1, r1 + r2)."""
    if not isinstance(other, type(self)):
        raise TypeError(f"Gamma.conjugate_update needs a Gamma likelihood, got {type(other).__name__}")
    concentration = self.concentration + other.concentration - 1
    rate = self.rate + other.rate
    posterior = type(self)(concentration, rate)

    def normalizer(k: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return k * r.log() - k.lgamma()

    log_normalizer = (
        normalizer(self.concentration, self.rate)
        + normalizer(other.concentration, other.rate)
        - normalizer(concentration, rate)
    )
    return posterior, log_normalizer


def dirichlet_update(self: Any, other: Any) -> tuple[Any, torch.Tensor]:
    """Dirichlet(c1) * Dirichlet(c2) is proportional to Dirichlet(c1 + c2 - 1)."""
    if not isinstance(other, type(self)):
        raise TypeError(f"Dirichlet.conjugate_update needs a Dirichlet likelihood, got {type(other).__name__}")
    concentration = self.concentration + other.concentration - 1
    posterior = type(self)(concentration)

    def normalizer(c: torch.Tensor) -> torch.Tensor:
        return c.sum(-1).lgamma() - c.lgamma().sum(-1)

    log_normalizer = normalizer(self.concentration) + normalizer(other.concentration) - normalizer(concentration)
    return posterior, log_normalizer


def independent_update(self: Any, other: Any) -> tuple[Any, torch.Tensor]:
    """Update the base distribution, then sum the normalizer over the reinterpreted dims."""
    n = self.reinterpreted_batch_ndims
    posterior, log_normalizer = self.base_dist.conjugate_update(other.to_event(-n))
    return posterior.to_event(n), sum_rightmost(log_normalizer, n)


def masked_update(self: Any, other: Any) -> tuple[Any, torch.Tensor]:
    """Update the base distribution and mask the result as the prior is masked.

    Where the prior is masked its entries take no part in the model, so the posterior stays
    masked there and the log normalizer is zero. (A bool mask works too; pyro-ppl 1.9.2
    raises a ``TypeError`` from ``torch.where`` on one.)
    """
    posterior, log_normalizer = self.base_dist.conjugate_update(other)
    mask = self._mask
    if isinstance(mask, torch.Tensor):
        log_normalizer = torch.where(mask, log_normalizer, torch.zeros_like(log_normalizer))
    elif not mask:
        log_normalizer = torch.zeros_like(log_normalizer)
    return posterior.mask(mask), log_normalizer


def expanded_update(self: Any, other: Any) -> tuple[Any, torch.Tensor]:
    """Update the base distribution, then broadcast the posterior and normalizer to the batch shape."""
    posterior, log_normalizer = self.base_dist.conjugate_update(other)
    return posterior.expand(self.batch_shape), log_normalizer.expand(self.batch_shape)

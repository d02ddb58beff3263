"""Draw a site from its prior updated by a conjugate likelihood, with an importance weight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ember.distributions.delta import Delta
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.poutine.runtime import get_mask
from ember.primitives import sample

__all__ = ["ConjugateReparam"]


class ConjugateReparam(Reparam):
    """EXPERIMENTAL: draw a site from its prior conjugate-updated by a (guessed) likelihood.

    With prior ``p(z)``, a likelihood-shaped ``guide`` ``q(z | x)`` and their normalized
    product ``u(z) = p(z) q(z | x) / c`` (from the prior's ``conjugate_update``), the site
    is drawn from ``u`` at the auxiliary site ``"<name>_updated"`` and becomes a point mass
    weighted by ``p(z) / u(z) = c / q(z | x)``. When ``q`` is the exact normalized
    likelihood, the weighted site times the likelihood no longer depends on ``z``: the
    posterior needs no guide (and HMC sees a flat direction).

    :param guide: a distribution, or a callable taking the model's ``*args, **kwargs`` and
        returning one; which ones work depends on the prior's ``conjugate_update``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> hmm = dist.GaussianHMM(dist.Normal(torch.zeros(1), 1.0).to_event(1), torch.eye(1),
    ...     dist.Normal(torch.zeros(1), 1.0).to_event(1), torch.eye(1),
    ...     dist.Normal(torch.zeros(1), 1.0).to_event(1), duration=3)
    >>> likelihood = dist.Normal(torch.zeros(3, 1), 1.0).to_event(2)
    >>> model = lambda: ember.sample("x", hmm)
    >>> tr = poutine.trace(poutine.reparam(model, {"x": ConjugateReparam(likelihood)})).get_trace()
    >>> tr.nodes["x"]["value"].shape
    torch.Size([3, 1])
    """

    def __init__(self, guide: Any | Callable[..., Any]) -> None:
        self.guide = guide

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Draw from the updated prior and weight the site by ``c / q(z | x)``.

        :param msg: the site.
        :raises NotImplementedError: if the prior has no ``conjugate_update`` or the updated
            distribution cannot be reparameterized, naming the site.
        """
        name = msg["name"]
        fn: Any = msg["fn"]
        guide_dist = self.guide
        if not isinstance(guide_dist, torch.distributions.Distribution):
            if self.args_kwargs is None:
                raise ValueError(
                    f"ConjugateReparam at site {name!r}: a callable guide needs the model's "
                    "arguments; apply it through poutine.reparam"
                )
            args, kwargs = self.args_kwargs
            guide_dist = guide_dist(*args, **kwargs)
        if not isinstance(guide_dist, torch.distributions.Distribution):
            raise AssertionError(
                f"ConjugateReparam at site {name!r}: the guide returned {type(guide_dist).__name__}, "
                "not a distribution"
            )
        update = getattr(fn, "conjugate_update", None)
        if update is None:
            raise NotImplementedError(
                f"ConjugateReparam at site {name!r}: {type(fn).__name__} has no conjugate_update"
            )
        updated, log_normalizer = update(guide_dist)
        if not updated.has_rsample:
            raise NotImplementedError(
                "ConjugateReparam inference supports only reparameterized distributions, but got "
                f"{type(updated)} at site {name!r}"
            )
        # _do_not_trace: the site's value is traced at the original site, which carries the
        # importance weight; tracing the draw too would count its density twice.
        value = sample(
            f"{name}_updated",
            updated,
            obs=msg["value"],
            infer={"is_observed": bool(msg["is_observed"]), "is_auxiliary": True, "_do_not_trace": True},
        )
        log_density: Any = 0.0 if get_mask() is False else log_normalizer - guide_dist.log_prob(value)
        new_fn = Delta(value, log_density=log_density, event_dim=updated.event_dim)
        return {"fn": new_fn, "value": value, "is_observed": True}

"""Student-t latent variables as normals with a gamma-distributed precision."""

from __future__ import annotations

import torch

import ember.distributions as dist
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.primitives import sample

__all__ = ["StudentTReparam"]


class StudentTReparam(Reparam):
    """Draw a ``StudentT(df, loc, scale)`` site as a scale mixture of normals.

    The auxiliary site ``"<site>_gamma" ~ Gamma(df / 2, df / 2)`` is drawn first; the site
    itself becomes ``Normal(loc, scale / sqrt(gamma))``, conditionally Gaussian (useful for
    conjugate or Kalman-style inference). The marginal of the site is unchanged. Works for
    latent and observed sites.

    :raises AssertionError: on a site whose distribution is not a ``StudentT`` (Pyro's type),
        naming the site.

    >>> import ember
    >>> from ember import poutine
    >>> model = lambda: ember.sample("x", dist.StudentT(3.0, 0.0, 1.0))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": StudentTReparam()})).get_trace()
    >>> list(tr.nodes)[1:3], type(tr.nodes["x"]["fn"]).__name__
    (['x_gamma', 'x'], 'Normal')
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        name = msg["name"]
        fn, event_dim = self._unwrap(msg["fn"])
        if not isinstance(fn, torch.distributions.StudentT):
            raise AssertionError(f"StudentTReparam at site {name!r} expects a StudentT distribution, got {type(fn).__name__}")
        half_df = fn.df * 0.5
        gamma = sample(f"{name}_gamma", self._wrap(dist.Gamma(half_df, half_df), event_dim))
        new_fn = self._wrap(dist.Normal(fn.loc, fn.scale * gamma.rsqrt()), event_dim)
        return {"fn": new_fn, "value": msg["value"], "is_observed": bool(msg["is_observed"])}

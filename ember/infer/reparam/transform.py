"""Reparameterize a transformed distribution by its base distribution."""

from __future__ import annotations

import torch

from ember.distributions.delta import Delta
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.primitives import sample

__all__ = ["TransformReparam"]


class TransformReparam(Reparam):
    """Draw a ``TransformedDistribution`` latent site through its base distribution.

    The site ``x`` becomes a deterministic (zero-density) function of a new site
    ``x_base`` drawn from the base distribution, with event dims adjusted for the transforms.
    The Jacobian thus moves out of the density: useful when the posterior is simple in the
    base space. Meant for latent sites, not for likelihoods.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> def model():
    ...     return ember.sample("x", dist.LogNormal(0.0, 1.0))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": TransformReparam()})).get_trace()
    >>> bool(tr.nodes["x"]["value"] == tr.nodes["x_base"]["value"].exp())
    True
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        name = msg["name"]
        value = msg["value"]
        fn, event_dim = self._unwrap(msg["fn"])
        if not isinstance(fn, torch.distributions.TransformedDistribution):
            raise AssertionError(
                f"TransformReparam at sample site {name!r} expects a TransformedDistribution, "
                f"got {type(fn).__name__}"
            )
        transforms = fn.transforms

        # Map a known value back to the base space.
        value_base = value
        if value is not None:
            for t in reversed(transforms):
                value_base = t.inv(value_base)

        base_event_dim = event_dim
        for t in reversed(transforms):
            base_event_dim += t.domain.event_dim - t.codomain.event_dim
        value_base = sample(
            f"{name}_base",
            self._wrap(fn.base_dist, base_event_dim),
            obs=value_base,
            infer={"is_observed": bool(msg["is_observed"])},
        )

        if value is None:
            value = value_base
            for t in transforms:
                value = t(value)

        new_fn = Delta(value, event_dim=event_dim).mask(False)
        return {"fn": new_fn, "value": value, "is_observed": True}

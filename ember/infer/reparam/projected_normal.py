"""Reparameterizing :class:`~ember.distributions.ProjectedNormal` latent sites."""

from __future__ import annotations

import torch

from ember.distributions.delta import Delta
from ember.distributions.projected_normal import ProjectedNormal
from ember.distributions.torch import Normal
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.ops.tensor_utils import safe_normalize
from ember.primitives import sample

__all__ = ["ProjectedNormalReparam"]


class ProjectedNormalReparam(Reparam):
    """Draw a :class:`~ember.distributions.ProjectedNormal` site as a normalized normal.

    The site ``x ~ ProjectedNormal(c)`` becomes a parameter-free auxiliary site
    ``"<name>_normal" ~ Normal(0, 1)`` over vectors ``z`` and the deterministic
    ``x = safe_normalize(z + c)``, so autoguides work in Euclidean space. Latent sites only.

    >>> import ember, torch
    >>> from ember import poutine
    >>> import ember.distributions as dist
    >>> def model():
    ...     return ember.sample("x", dist.ProjectedNormal(torch.tensor([0.0, 3.0])))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": ProjectedNormalReparam()})).get_trace()
    >>> z = tr.nodes["x_normal"]["value"]
    >>> bool(torch.allclose(tr.nodes["x"]["value"], (z + torch.tensor([0.0, 3.0])) / (z + torch.tensor([0.0, 3.0])).norm()))
    True
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Replace the site by its normal auxiliary and a deterministic projection.

        :param msg: the site.
        :raises NotImplementedError: for an observed site.
        :raises TypeError: if the site's distribution is not a ``ProjectedNormal``.
        """
        name = msg["name"]
        value = msg["value"]
        if msg["is_observed"]:
            raise NotImplementedError("ProjectedNormalReparam does not support observe statements")
        fn, event_dim = self._unwrap(msg["fn"])
        if not isinstance(fn, ProjectedNormal):
            raise TypeError(
                f"ProjectedNormalReparam at site {name!r}: expected a ProjectedNormal, got "
                f"{type(fn).__name__}"
            )
        concentration: torch.Tensor = fn.concentration
        # Any preimage of an initial value works; this one is differentiable.
        normal_value = None if value is None else value - concentration
        normal = Normal(torch.zeros_like(concentration), 1.0).to_event(1)
        z = sample(
            f"{name}_normal",
            self._wrap(normal, event_dim),
            obs=normal_value,
            infer={"is_observed": False},
        )
        if value is None:
            value = safe_normalize(z + concentration)
        new_fn = Delta(value, event_dim=event_dim).mask(False)
        return {"fn": new_fn, "value": value, "is_observed": True}

"""Reparameterize a latent site through a transform whose Jacobian determinant is one."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch
from torch.distributions import biject_to
from torch.distributions.transforms import ComposeTransform, Transform

from ember.distributions.delta import Delta
from ember.distributions.torch import TransformedDistribution
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.poutine.plate_messenger import block_plate
from ember.primitives import sample

__all__ = ["UnitJacobianReparam"]


def _reshape_batch(fn: Any, batch_shape: torch.Size) -> Any:
    """``fn`` with its batch dims reshaped to ``batch_shape`` (same number of elements)."""
    if isinstance(fn, torch.distributions.Independent):
        base_shape = batch_shape + fn.event_shape[: fn.reinterpreted_batch_ndims]
        return _reshape_batch(fn.base_dist, base_shape).to_event(fn.reinterpreted_batch_ndims)
    if fn.event_dim != 0:
        raise NotImplementedError(f"cannot reshape the batch of {type(fn).__name__}")
    params = {}
    for key in fn.arg_constraints:
        if key not in fn.__dict__:
            continue  # an alternative parameterisation that was never computed
        params[key] = getattr(fn, key).expand(fn.batch_shape).reshape(batch_shape)
    return type(fn)(**params)


class UnitJacobianReparam(Reparam):
    """Draw a latent site as ``transform`` of itself, a change of variables of unit Jacobian.

    The site ``x`` becomes a deterministic function of a new site ``x_<suffix>`` holding
    ``transform(x)`` (after first mapping ``x`` to unconstrained space), so its density is
    unchanged. Meant for latent sites, not for likelihoods.

    :param transform: a bijection with Jacobian determinant one.
    :param suffix: appended to the site name to name the transformed site.
    :param experimental_allow_batch: EXPERIMENTAL: let the transform couple batch dims. The
        transformed batch dims (and all batch dims to their right) become event dims of the
        new site, which is drawn outside the plates that own them.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> from torch.distributions.transforms import AffineTransform
    >>> flip = UnitJacobianReparam(AffineTransform(0.0, -1.0), suffix="flipped")
    >>> def model():
    ...     return ember.sample("x", dist.Normal(0.0, 1.0))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": flip})).get_trace()
    >>> bool(tr.nodes["x"]["value"] == -tr.nodes["x_flipped"]["value"])
    True
    """

    def __init__(self, transform: Transform, suffix: str = "transformed", *, experimental_allow_batch: bool = False) -> None:
        self.transform = transform.with_cache()  # type: ignore[no-untyped-call]  # torch leaves with_cache unannotated
        self.suffix = suffix
        self.experimental_allow_batch = experimental_allow_batch

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        name = msg["name"]
        fn = msg["fn"]
        value = msg["value"]
        event_dim: int = fn.event_dim
        shift = max(0, self.transform.event_dim - event_dim)
        with ExitStack() as stack:
            if shift:
                if not self.experimental_allow_batch:
                    raise ValueError(
                        f"At sample site {name!r}: cannot transform along a batch dimension; try "
                        "either converting a batch dimension to an event dimension, or setting "
                        "experimental_allow_batch=True."
                    )
                # Insert singleton dims where the coupled plates' dims were, make the coupled
                # dims event dims, and hide those plates from the new site.
                old_shape = fn.batch_shape
                new_shape = old_shape[:-shift] + (1,) * shift + old_shape[-shift:]
                fn = _reshape_batch(fn, new_shape).to_event(shift)
                if value is not None:
                    cut = value.dim() - shift - event_dim
                    value = value.reshape(value.shape[:cut] + (1,) * shift + value.shape[cut:])
                for dim in range(-shift, 0):
                    stack.enter_context(block_plate(dim=dim, strict=False))

            transform = ComposeTransform([biject_to(fn.support).inv.with_cache(), self.transform])
            value_trans = None if value is None else transform(value)
            value_trans = sample(
                f"{name}_{self.suffix}",
                TransformedDistribution(fn, transform),
                obs=value_trans,
                infer={"is_observed": bool(msg["is_observed"])},
            )

        if value is None:
            value = transform.inv(value_trans)  # cached: no recomputation
        if shift:
            value = value.reshape(value.shape[: -2 * shift - event_dim] + value.shape[-shift - event_dim :])
        return {"fn": Delta(value, event_dim=event_dim), "value": value, "is_observed": True}

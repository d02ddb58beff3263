"""Neural transport: latent sites drawn through a trained autoguide's transform (Hoffman et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch
from torch.distributions import biject_to

from ember.distributions import Delta
from ember.distributions.util import sum_rightmost
from ember.infer.autoguide import AutoContinuous
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.poutine import block_plate
from ember.poutine.handlers import reparam
from ember.poutine.message import Message
from ember.poutine.runtime import get_mask
from ember.primitives import sample

__all__ = ["NeuTraReparam"]


class NeuTraReparam(Reparam):
    """Replace all latent sites of a model by one draw of a trained guide's base distribution.

    A sample ``z`` of the guide's base distribution (the site ``"<first site>_shared_latent"``)
    is pushed through the guide's transform to the packed unconstrained latents, which are
    unpacked and constrained into each latent site's value; each site's density picks up the
    log Jacobians, so the joint density of ``z`` is the model's posterior seen through the
    transform: nearly a standard normal when the guide is good, which MCMC likes.

    :param guide: a trained :class:`~ember.infer.autoguide.AutoContinuous` guide whose
        ``get_transform`` takes no model arguments (e.g. ``AutoDiagonalNormal``).
    :raises TypeError: for another kind of guide.

    Use :meth:`reparam` to reparameterize the model, and :meth:`transform_sample` to map
    draws of ``z`` back to the model's sites.
    """

    def __init__(self, guide: AutoContinuous) -> None:
        if not isinstance(guide, AutoContinuous):
            raise TypeError(f"NeuTraReparam expected an AutoContinuous guide, but got {type(guide)}")
        self.guide = guide
        self.transform: Any = None
        self.x_unconstrained: dict[str, tuple[Any, torch.Tensor]] = {}
        self.is_observed: bool | None = None

    def _reparam_config(self, site: Message) -> NeuTraReparam | None:
        prototype = self.guide.prototype_trace
        return self if prototype is not None and site["name"] in prototype else None

    def reparam(self, fn: Callable[..., Any] | None = None) -> Any:
        """``fn`` with every latent site of the guide's prototype reparameterized by this object."""
        return reparam(fn, config=self._reparam_config) if fn is not None else reparam(config=self._reparam_config)

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        name = msg["name"]
        fn: Any = msg["fn"]
        prototype = self.guide.prototype_trace
        if prototype is None or name not in prototype.nodes:
            return {"fn": fn, "value": msg["value"], "is_observed": bool(msg["is_observed"])}
        if msg["is_observed"]:
            raise NotImplementedError(f"At pyro.sample({name!r},...), NeuTraReparam does not support observe statements.")
        log_density: torch.Tensor | float = 0.0
        compute_density = get_mask() is not False
        if name not in self.x_unconstrained:  # the first latent site of this model run
            try:
                self.transform = self.guide.get_transform()
            except (NotImplementedError, TypeError) as e:
                raise ValueError(
                    "NeuTraReparam only supports guides that implement `get_transform` method that does not "
                    "depend on the model's `*args, **kwargs`"
                ) from e
            with ExitStack() as stack:
                for plate in self.guide.plates.values():
                    stack.enter_context(block_plate(dim=plate.dim, strict=False))
                z = sample(f"{name}_shared_latent", self.guide.get_base_dist().mask(False))
            x_unconstrained = self.transform(z)
            if compute_density:
                log_density = self.transform.log_abs_det_jacobian(z, x_unconstrained)
            self.x_unconstrained = {
                packed.name: (packed.site, value) for packed, value in self.guide._unpack_latent(x_unconstrained)
            }
        _, unconstrained = self.x_unconstrained.pop(name)
        transform = biject_to(fn.support)
        value = transform(unconstrained)
        if compute_density:
            logdet = transform.log_abs_det_jacobian(unconstrained, value)
            logdet = sum_rightmost(logdet, logdet.dim() - value.dim() + fn.event_dim)
            log_density = log_density + fn.log_prob(value) + logdet
        return {"fn": Delta(value, log_density, event_dim=fn.event_dim), "value": value, "is_observed": True}

    def transform_sample(self, latent: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's latent values, by site name, for draws ``latent`` of the base distribution.

        :param latent: draws of ``z``, possibly with batch dims left of the model's plate dims.
        """
        x_unconstrained = self.transform(latent)
        return {
            packed.name: biject_to(getattr(packed.site["fn"], "support"))(value)
            for packed, value in self.guide._unpack_latent(x_unconstrained)
        }

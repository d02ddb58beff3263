"""Precondition a model's latent sites with a trained :class:`AutoStructured` guide."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch

from ember.distributions.delta import Delta
from ember.infer.autoguide import AutoStructured
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.poutine.handlers import condition, mask, reparam
from ember.poutine.message import Message
from ember.poutine.plate_messenger import block_plate
from ember.poutine.runtime import get_mask

__all__ = ["StructuredReparam"]


class StructuredReparam(Reparam):
    """Reparameterize every latent site a trained :class:`AutoStructured` guide covers.

    The model's latent sites become point masses at the guide's transform of its auxiliary
    (whitened) sites, which are what inference (typically MCMC) then samples; each point
    mass carries the model's density plus the guide's log Jacobian. This is a structured,
    restricted form of :class:`NeuTraReparam`, except that sites the guide treats as
    ``"delta"`` are fixed at their point estimates (an approximation of the model). Latent
    sites only; one instance serves all sites; the model must have static structure.

    :param guide: a trained :class:`AutoStructured` guide (its parameters are frozen).
    :raises TypeError: if ``guide`` is not an :class:`AutoStructured`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     ember.sample("x", dist.Normal(0.0, 1.0))
    >>> guide = AutoStructured(model, conditionals="normal")
    >>> guide()  # doctest: +ELLIPSIS
    {...}
    >>> tr = ember.poutine.trace(StructuredReparam(guide).reparam(model)).get_trace()
    >>> list(tr.nodes)[1:3]
    ['x_aux', 'x']
    """

    def __init__(self, guide: AutoStructured) -> None:
        if not isinstance(guide, AutoStructured):
            raise TypeError(f"StructuredReparam expected an AutoStructured guide, but got {type(guide)}")
        self.guide = guide.requires_grad_(False)
        self.deltas: dict[str, Delta] = {}

    def _reparam_config(self, site: Message) -> StructuredReparam | None:
        trace = self.guide.prototype_trace
        return self if trace is not None and site["name"] in trace.nodes else None

    def reparam(self, fn: Callable[..., Any] | None = None) -> Any:
        """``poutine.reparam`` of ``fn`` with this reparameterizer on the guide's sites.

        :param fn: the model (``None`` for a handler to use as a context manager).
        """
        return reparam(fn, config=self._reparam_config)

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Replace the site by the guide's point mass, drawing the guide's auxiliary sites
        (all of them, at the first site of the model).

        :param msg: the site.
        :raises NotImplementedError: for an observed site, naming it.
        """
        name = msg["name"]
        fn: Any = msg["fn"]
        trace = self.guide.prototype_trace
        if trace is None or name not in trace.nodes:
            return {"fn": fn, "value": msg["value"], "is_observed": bool(msg["is_observed"])}
        if msg["is_observed"]:
            raise NotImplementedError(
                f"At pyro.sample({name!r},...), StructuredReparam does not support observe statements"
            )
        if name not in self.deltas:
            # The guide's auxiliary sites are global: hide the model plates around this site.
            with ExitStack() as stack:
                for plate in self.guide.plates.values():
                    stack.enter_context(block_plate(dim=plate.dim, strict=False))
                self.deltas = self.guide.get_deltas()
        delta = self.deltas.pop(name)
        value = delta.v
        new_fn: Any = delta
        if get_mask() is not False:
            log_density: torch.Tensor = delta.log_density + fn.log_prob(value)
            new_fn = Delta(value, log_density, delta.event_dim)
        return {"fn": new_fn, "value": value, "is_observed": True}

    def transform_samples(
        self, aux_samples: dict[str, torch.Tensor], save_params: list[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Map samples of the auxiliary sites (with optional batch dims) to the model's sites.

        :param aux_samples: values of the guide's auxiliary sites, by name (only those needed
            for ``save_params`` if given).
        :param save_params: the model sites to return (default: all of them).
        :returns: the model sites' values, by name.
        """
        with condition(data=aux_samples), mask(mask=False):
            deltas = self.guide.get_deltas(save_params)
        return {name: delta.v for name, delta in deltas.items()}

"""The :class:`Reparam` base class and the message types reparameterizers exchange.

:class:`ReparamMessage` and :class:`ReparamResult` are defined next to
:class:`~ember.poutine.reparam_messenger.ReparamMessenger`, which sits lower in the import
graph, and re-exported here where Pyro users look for them.
"""

from __future__ import annotations

from abc import ABC
from typing import Any

import torch

from ember.poutine.reparam_messenger import ReparamMessage, ReparamResult
from ember._util import warn_at_caller

__all__ = ["Reparam", "ReparamMessage", "ReparamResult"]


class Reparam(ABC):
    """Base class of reparameterizers; subclasses implement :meth:`apply`.

    While a reparameterizer runs under ``reparam(model, config)``, ``args_kwargs`` holds the
    ``(args, kwargs)`` the model was called with (``None`` otherwise).

    >>> class Shift(Reparam):
    ...     def apply(self, msg):
    ...         return {"fn": msg["fn"], "value": msg["value"], "is_observed": msg["is_observed"]}
    >>> Shift().apply({"name": "x", "fn": None, "value": None, "is_observed": False})["is_observed"]
    False
    """

    args_kwargs: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Reparameterize one sample site.

        The default implementation calls the deprecated ``__call__(name, fn, obs)`` protocol
        with a ``DeprecationWarning``; new subclasses override this method instead.

        :param msg: the site's ``name``, distribution ``fn``, ``value`` (an observation or
            an initial value, else ``None``) and ``is_observed``.
        :returns: the site's new ``fn``, ``value`` and ``is_observed``.
        """
        warn_at_caller(
            "Reparam.__call__() is deprecated in favor of .apply(); new subclasses should implement .apply().",
            DeprecationWarning,
        )
        new_fn, value = self(msg["name"], msg["fn"], msg["value"])
        return {"fn": new_fn, "value": value, "is_observed": msg["value"] is None and value is not None}

    def __call__(self, name: str, fn: Any, obs: torch.Tensor | None) -> tuple[Any, torch.Tensor | None]:
        """Deprecated: the old protocol, returning ``(new_fn, value)``; implement :meth:`apply`."""
        raise NotImplementedError

    def _unwrap(self, fn: Any) -> tuple[Any, int]:
        """Strip ``Independent`` wrappers from ``fn``, returning it and its event dim."""
        event_dim: int = fn.event_dim
        while isinstance(fn, torch.distributions.Independent):
            fn = fn.base_dist
        return fn, event_dim

    def _wrap(self, fn: Any, event_dim: int) -> Any:
        """Re-declare batch dims of ``fn`` as event dims until it has ``event_dim`` of them."""
        if fn.event_dim < event_dim:
            fn = fn.to_event(event_dim - fn.event_dim)
        assert fn.event_dim == event_dim
        return fn

"""``block``: hide sites from the messengers outside it.

Changes step 1 of every message: ``msg["stop"]`` is set for hidden sites, so outer
messengers neither process nor postprocess them. The site still runs, and messengers inside
the block still see it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger

__all__ = ["BlockMessenger"]

HideFn = Callable[[Message], "bool | None"]


class _DefaultHideFn:
    """The decision table used when neither ``hide_fn`` nor ``expose_fn`` is given.

    Observed sample sites count as type ``"observe"``. A site is hidden if its name is in
    ``hide`` or its type in ``hide_types``, or if ``hide_all`` holds and neither its name is
    in ``expose`` nor its type in ``expose_types``.
    """

    def __init__(
        self,
        hide_all: bool,
        expose_all: bool,
        hide: Sequence[str] | None,
        expose: Sequence[str] | None,
        hide_types: Sequence[str] | None,
        expose_types: Sequence[str] | None,
    ) -> None:
        assert (not hide_all and not expose_all) or hide_all != expose_all, "cannot hide and expose a site"
        # Each list given switches hide_all, later ones winning: hide, expose, hide_types, expose_types.
        if hide is not None:
            hide_all = False
        if expose is not None:
            hide_all = True
        assert set(hide or ()).isdisjoint(expose or ()), "cannot hide and expose a site"
        if hide_types is not None:
            hide_all = False
        if expose_types is not None:
            hide_all = True
        assert set(hide_types or ()).isdisjoint(expose_types or ()), "cannot hide and expose a site type"
        self.hide = frozenset(hide or ())
        self.expose = frozenset(expose or ())
        self.hide_types = frozenset(hide_types or ())
        self.expose_types = frozenset(expose_types or ())
        self.hide_all = hide_all

    def __call__(self, msg: Message) -> bool:
        msg_type = "observe" if msg["type"] == "sample" and msg["is_observed"] else msg["type"]
        name = msg["name"]
        if name in self.hide or msg_type in self.hide_types:
            return True
        return self.hide_all and name not in self.expose and msg_type not in self.expose_types


class _Negated:
    def __init__(self, fn: HideFn) -> None:
        self.fn = fn

    def __call__(self, msg: Message) -> bool:
        return not self.fn(msg)


class BlockMessenger(Messenger):
    """Hide some sites (by default all of them) from outer messengers.

    :param hide_fn: hide the sites where this returns true.
    :param expose_fn: hide the sites where this returns false.
    :param hide_all: hide every site not exposed by the lists below.
    :param expose_all: expose every site not hidden by the lists below.
    :param hide: site names to hide.
    :param expose: site names to expose.
    :param hide_types: site types to hide (``"observe"`` for observed samples).
    :param expose_types: site types to expose.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_messenger import TraceMessenger
    >>> with TraceMessenger() as tracer, BlockMessenger(hide=["a"]):
    ...     a = ember.sample("a", dist.Normal(0.0, 1.0))
    ...     b = ember.sample("b", dist.Normal(0.0, 1.0))
    >>> list(tracer.trace.nodes)
    ['b']
    """

    def __init__(
        self,
        hide_fn: HideFn | None = None,
        expose_fn: HideFn | None = None,
        hide_all: bool = True,
        expose_all: bool = False,
        hide: Sequence[str] | None = None,
        expose: Sequence[str] | None = None,
        hide_types: Sequence[str] | None = None,
        expose_types: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if hide_fn is not None and expose_fn is not None:
            raise ValueError("Only specify one of hide_fn or expose_fn")
        if hide_fn is not None:
            self.hide_fn: HideFn = hide_fn
        elif expose_fn is not None:
            self.hide_fn = _Negated(expose_fn)
        else:
            self.hide_fn = _DefaultHideFn(hide_all, expose_all, hide, expose, hide_types, expose_types)

    def _process_message(self, msg: Message) -> None:
        msg["stop"] = bool(self.hide_fn(msg))

    def _blocks_nonlocal_exit(self, msg: Message) -> bool:
        return bool(self.hide_fn(msg))

"""``equalize``: give every matching site the value of the first one.

Changes step 3 (postprocess) of the first message whose type is ``type`` and whose name
fully matches one of the patterns: its final value is remembered. It changes step 1 of
every later matching message: the remembered value is set (and a sample site is marked
observed and, unless ``keep_dist``, scored by a masked ``Delta`` so it adds nothing to the
log density). The remembered value is forgotten each time the messenger is entered.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from typing_extensions import Self

from ember.distributions.delta import Delta
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger

__all__ = ["EqualizeMessenger"]


class EqualizeMessenger(Messenger):
    """Force the sites whose names match ``sites`` to share one value.

    The value is that of the first matching site to complete. With ``keep_dist=False`` the
    later sites become deterministic copies of it; with ``keep_dist=True`` they keep their
    distributions, which then score the shared value, i.e. the model is conditioned on the
    sites being equal.

    :param sites: a regular expression, or a sequence of them, matched against the whole
        site name (:func:`re.fullmatch`).
    :param type: the site type to equalize, ``"sample"`` or ``"param"``.
    :param keep_dist: keep the distributions of the later sample sites.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with EqualizeMessenger(sites="scale_.*"):
    ...     a = ember.sample("scale_a", dist.LogNormal(0.0, 1.0))
    ...     b = ember.sample("scale_b", dist.LogNormal(0.0, 1.0))
    >>> bool(a == b)
    True
    """

    _copy_per_call = True  # per-run state: each call of a wrapped function gets a copy

    def __init__(self, sites: str | Sequence[str], type: str = "sample", keep_dist: bool = False) -> None:
        super().__init__()
        self.sites: list[str] = [sites] if isinstance(sites, str) else list(sites)
        self._patterns = [re.compile(site) for site in self.sites]
        self.type = type
        self.keep_dist = keep_dist
        self.value: Any = None

    def __enter__(self) -> Self:
        self.value = None
        return super().__enter__()

    def _is_matching(self, msg: Message) -> bool:
        if msg["type"] != self.type:
            return False
        name = msg["name"] or ""
        return any(pattern.fullmatch(name) is not None for pattern in self._patterns)

    def _process_message(self, msg: Message) -> None:
        if self.value is None or not self._is_matching(msg):
            return
        msg["value"] = self.value
        if msg["type"] == "sample":
            msg["is_observed"] = True
            if not self.keep_dist:
                fn: Any = msg["fn"]
                msg["infer"] = {"_deterministic": True}
                msg["fn"] = Delta(self.value, event_dim=fn.event_dim).mask(False)

    def _postprocess_message(self, msg: Message) -> None:
        if self.value is None and self._is_matching(msg):
            value = msg["value"]
            assert value is not None, f"site {msg['name']} completed without a value"
            self.value = value

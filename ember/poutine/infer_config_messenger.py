"""``infer_config``: add inference options to sample and param sites.

Changes step 1 of ``sample`` and ``param`` messages: ``msg["infer"]`` is updated in place
with ``config_fn(msg)``. The dict is updated, not replaced, so whoever shares it (a guide
site a replayed model site took its ``infer`` from) sees the new options too.
"""

from __future__ import annotations

from typing import Callable

from ember.poutine.message import InferDict, Message
from ember.poutine.messenger import Messenger

__all__ = ["InferConfigMessenger"]


class InferConfigMessenger(Messenger):
    """Set per-site inference options computed from each site.

    :param config_fn: takes a sample or param message and returns the options to merge
        into its ``infer`` dict (an empty dict leaves the site as it is).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_messenger import TraceMessenger
    >>> def config_fn(msg):
    ...     return {"enumerate": "parallel"} if msg["name"] == "c" else {}
    >>> with TraceMessenger() as tracer, InferConfigMessenger(config_fn):
    ...     c = ember.sample("c", dist.Bernoulli(0.5))
    >>> tracer.trace.nodes["c"]["infer"]
    {'enumerate': 'parallel'}
    """

    def __init__(self, config_fn: Callable[[Message], InferDict]) -> None:
        super().__init__()
        self.config_fn = config_fn

    def _pyro_sample(self, msg: Message) -> None:
        msg["infer"].update(self.config_fn(msg))

    def _pyro_param(self, msg: Message) -> None:
        msg["infer"].update(self.config_fn(msg))

"""``replay``: reuse the sample values of a given trace (and given param values).

Changes step 1 of unobserved ``sample`` messages whose name is in the trace: the value (the
same object) and the ``infer`` dict are taken from the trace node and the message is marked
``done``. ``param`` messages named in ``params`` take the given constrained value.

Beyond Pyro: with validation on, a use that ends normally without reaching some latent
sample sites of ``trace`` (auxiliary and subsample sites aside) or some names in
``params`` warns once, listing them.
"""

from __future__ import annotations

from typing import Mapping

import torch

from ember.poutine.message import Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import _unused_trace_sites, _warn_unused, _WarnsUnreached

__all__ = ["ReplayMessenger"]


class ReplayMessenger(_WarnsUnreached):
    """Replay sample sites from ``trace`` and param sites from ``params``.

    :param trace: a trace whose unobserved sample values to reuse.
    :param params: constrained param values to use, by name.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_messenger import TraceMessenger
    >>> with TraceMessenger() as guide_tracer:
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    >>> with ReplayMessenger(trace=guide_tracer.trace):
    ...     same = ember.sample("z", dist.Normal(5.0, 1.0))
    >>> same is z
    True
    """

    _copy_per_call = True

    def __init__(self, trace: Trace | None = None, params: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if trace is None and params is None:
            raise ValueError("must provide trace or params to replay against")
        self.trace = trace
        self.params = params

    def _report_unreached(self) -> None:
        if self.trace is not None and self.trace.nodes:
            _warn_unused("replay", "a trace", _unused_trace_sites(self.trace, self._reached))
        if self.params:
            _warn_unused("replay", "params", set(self.params) - self._reached)

    def _pyro_sample(self, msg: Message) -> None:
        if self.trace is None:
            return
        name = msg["name"]
        if name not in self.trace:
            return
        self._reached.add(name or "")
        if msg["is_observed"]:
            return
        guide_msg = self.trace.nodes[name or ""]
        if guide_msg["type"] != "sample" or guide_msg["is_observed"]:
            raise RuntimeError(f"site {name} must be sampled in trace")
        msg["done"] = True
        msg["value"] = guide_msg["value"]
        msg["infer"] = guide_msg["infer"]

    def _pyro_param(self, msg: Message) -> None:
        if self.params is None or msg["name"] not in self.params:
            return
        self._reached.add(msg["name"] or "")
        value = self.params[msg["name"] or ""]
        assert hasattr(value, "unconstrained"), f"param {msg['name']} must be constrained value"
        msg["done"] = True
        msg["value"] = value

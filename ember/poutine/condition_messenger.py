"""``condition``: observe sample sites at given values.

Changes step 1 of ``sample`` messages named in ``data``: the value is set and the site is
observed (unless the given value is ``None``, which leaves it latent).

Beyond Pyro: with validation on, a use of ``condition`` (one ``with`` block or one call of
the wrapped function) that ends normally without reaching some names in ``data`` warns
once, listing them. Each call of a wrapped function records what it reached on its own
copy of the messenger, so one conditioned model may run in many threads at once.
"""

from __future__ import annotations

from typing import Any, Mapping

from ember.poutine.message import Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import _unused_trace_sites, _warn_unused, _WarnsUnreached

__all__ = ["ConditionMessenger"]


class ConditionMessenger(_WarnsUnreached):
    """Condition sample sites on the values in ``data``.

    :param data: values by site name, or a trace whose node values to use.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with ConditionMessenger(data={"x": torch.tensor(2.0)}):
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    >>> x
    tensor(2.)
    """

    _copy_per_call = True

    def __init__(self, data: Mapping[str, Any] | Trace) -> None:
        super().__init__()
        self.data = data

    def _report_unreached(self) -> None:
        data = self.data
        if len(self._reached) < len(data):
            if isinstance(data, Trace):
                _warn_unused("condition", "data", _unused_trace_sites(data, self._reached))
            else:
                _warn_unused("condition", "data", set(data) - self._reached)

    def _pyro_sample(self, msg: Message) -> None:
        name = msg["name"]
        data = self.data
        if name not in data:
            return
        self._reached.add(name or "")
        if isinstance(data, Trace):
            msg["value"] = data.nodes[name or ""]["value"]
        else:
            msg["value"] = data[name or ""]
        msg["is_observed"] = msg["value"] is not None

"""``condition``: observe sample sites at given values.

Changes step 1 of ``sample`` messages named in ``data``: the value is set and the site is
observed (unless the given value is ``None``, which leaves it latent).
"""

from __future__ import annotations

from typing import Any, Mapping

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.trace_struct import Trace

__all__ = ["ConditionMessenger"]


class ConditionMessenger(Messenger):
    """Condition sample sites on the values in ``data``.

    :param data: values by site name, or a trace whose node values to use.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with ConditionMessenger(data={"x": torch.tensor(2.0)}):
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    >>> x
    tensor(2.)
    """

    def __init__(self, data: Mapping[str, Any] | Trace) -> None:
        super().__init__()
        self.data = data

    def _pyro_sample(self, msg: Message) -> None:
        name = msg["name"]
        data = self.data
        if name not in data:
            return
        if isinstance(data, Trace):
            msg["value"] = data.nodes[name or ""]["value"]
        else:
            msg["value"] = data[name or ""]
        msg["is_observed"] = msg["value"] is not None

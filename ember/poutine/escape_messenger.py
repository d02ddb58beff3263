"""``escape``: abandon a run at chosen sample sites.

Changes step 1 of ``sample`` messages for which ``escape_fn(msg)`` is true: the message is
marked ``done`` (nothing is sampled) and stopped (messengers outside ``escape`` never see it),
and it gets a continuation that raises :class:`~ember.poutine.runtime.NonlocalExit` carrying
the message. The continuation runs in step 4, after postprocessing, so traces *inside*
``escape`` record the site before the run unwinds.
"""

from __future__ import annotations

from typing import Callable

from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import NonlocalExit

__all__ = ["EscapeMessenger"]


def _exit_at(msg: Message) -> None:
    raise NonlocalExit(msg)


class EscapeMessenger(Messenger):
    """Leave the program with :class:`~ember.poutine.runtime.NonlocalExit` at chosen sites.

    Catch the exception outside and call its
    :meth:`~ember.poutine.runtime.NonlocalExit.reset_stack` to reset the enclosing
    messengers; its ``site`` is the escaped message.

    :param escape_fn: takes a sample message and says whether to escape there.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.runtime import NonlocalExit
    >>> try:
    ...     with EscapeMessenger(lambda msg: msg["name"] == "b"):
    ...         a = ember.sample("a", dist.Normal(0.0, 1.0))
    ...         b = ember.sample("b", dist.Bernoulli(0.5))
    ... except NonlocalExit as leave:
    ...     escaped = leave.site["name"]
    >>> escaped
    'b'
    """

    def __init__(self, escape_fn: Callable[[Message], bool]) -> None:
        super().__init__()
        self.escape_fn = escape_fn

    def _pyro_sample(self, msg: Message) -> None:
        if self.escape_fn(msg):
            msg["done"] = True
            msg["stop"] = True
            msg["continuation"] = _exit_at

"""Pyro's module path ``pyro.poutine.broadcast_messenger``, kept for programs that import it."""

from ember.poutine.messengers.broadcast import BroadcastMessenger

__all__ = ["BroadcastMessenger"]

"""Pyro's module path ``pyro.poutine.escape_messenger``, kept for programs that import it."""

from ember.poutine.messengers.escape import EscapeMessenger

__all__ = ["EscapeMessenger"]

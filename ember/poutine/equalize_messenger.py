"""Pyro's module path ``pyro.poutine.equalize_messenger``, kept for programs that import it."""

from ember.poutine.messengers.equalize import EqualizeMessenger

__all__ = ["EqualizeMessenger"]

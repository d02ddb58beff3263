"""Pyro's module path ``pyro.poutine.do_messenger``, kept for programs that import it."""

from ember.poutine.messengers.do import DoMessenger

__all__ = ["DoMessenger"]

"""Pyro's module path ``pyro.poutine.uncondition_messenger``, kept for programs that import it."""

from ember.poutine.messengers.uncondition import UnconditionMessenger

__all__ = ["UnconditionMessenger"]

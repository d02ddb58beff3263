"""Pyro's module path ``pyro.poutine.substitute_messenger``, kept for programs that import it."""

from ember.poutine.messengers.substitute import SubstituteMessenger

__all__ = ["SubstituteMessenger"]

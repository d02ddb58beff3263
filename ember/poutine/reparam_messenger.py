"""Pyro's module path ``pyro.poutine.reparam_messenger``, kept for programs that import it."""

from ember.poutine.messengers.reparam import ReparamHandler, ReparamMessenger

__all__ = ["ReparamHandler", "ReparamMessenger"]

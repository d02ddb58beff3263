"""Pyro's module path ``pyro.poutine.lift_messenger``, kept for programs that import it."""

from ember.poutine.messengers.lift import LiftMessenger

__all__ = ["LiftMessenger"]

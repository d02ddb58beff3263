"""Pyro's module path ``pyro.poutine.enum_messenger``, kept for programs that import it."""

from ember.poutine.messengers.enum import EnumMessenger

__all__ = ["EnumMessenger"]

"""Pyro's module path ``pyro.poutine.condition_messenger``, kept for programs that import it."""

from ember.poutine.messengers.condition import ConditionMessenger

__all__ = ["ConditionMessenger"]

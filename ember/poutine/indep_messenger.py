"""Pyro's module path ``pyro.poutine.indep_messenger``, kept for programs that import it."""

from ember.poutine.message import CondIndepStackFrame
from ember.poutine.messengers.plate import IndepMessenger

__all__ = ["CondIndepStackFrame", "IndepMessenger"]

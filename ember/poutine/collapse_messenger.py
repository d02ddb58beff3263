"""Pyro's module path ``pyro.poutine.collapse_messenger``, kept for programs that import it."""

from ember.poutine.messengers.collapse import CollapseMessenger

__all__ = ["CollapseMessenger"]

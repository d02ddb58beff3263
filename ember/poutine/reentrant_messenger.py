"""Pyro's module path ``pyro.poutine.reentrant_messenger``, kept for programs that import it."""

from ember.poutine.messenger import ReentrantMessenger

__all__ = ["ReentrantMessenger"]

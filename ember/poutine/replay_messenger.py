"""Pyro's module path ``pyro.poutine.replay_messenger``, kept for programs that import it."""

from ember.poutine.messengers.replay import ReplayMessenger

__all__ = ["ReplayMessenger"]

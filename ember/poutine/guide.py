"""Pyro's module path ``pyro.poutine.guide``, kept for programs that import it."""

from ember.poutine.messengers.guide import GuideMessenger

__all__ = ["GuideMessenger"]

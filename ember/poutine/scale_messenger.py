"""Pyro's module path ``pyro.poutine.scale_messenger``, kept for programs that import it."""

from ember.poutine.messengers.scale import ScaleMessenger

__all__ = ["ScaleMessenger"]

"""Pyro's module path ``pyro.poutine.mask_messenger``, kept for programs that import it."""

from ember.poutine.messengers.mask import MaskMessenger

__all__ = ["MaskMessenger"]

"""Pyro's module path ``pyro.poutine.block_messenger``, kept for programs that import it."""

from ember.poutine.messengers.block import BlockMessenger

__all__ = ["BlockMessenger"]

"""Pyro's module path ``pyro.poutine.plate_messenger``, kept for programs that import it."""

from ember.poutine.messengers.plate import PlateMessenger, block_plate

__all__ = ["PlateMessenger", "block_plate"]

"""Pyro's module path ``pyro.poutine.seed_messenger``, kept for programs that import it."""

from ember.poutine.messengers.seed import SeedMessenger

__all__ = ["SeedMessenger"]

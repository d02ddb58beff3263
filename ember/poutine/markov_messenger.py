"""Pyro's module path ``pyro.poutine.markov_messenger``, kept for programs that import it."""

from ember.poutine.messengers.markov import MarkovMessenger

__all__ = ["MarkovMessenger"]

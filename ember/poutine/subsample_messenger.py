"""Pyro's module path ``pyro.poutine.subsample_messenger``, kept for programs that import it."""

from ember.poutine.messengers.plate import SubsampleMessenger, _Subsample

__all__ = ["SubsampleMessenger", "_Subsample"]

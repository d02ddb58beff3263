"""Pyro's module path ``pyro.poutine.infer_config_messenger``, kept for programs that import it."""

from ember.poutine.messengers.infer_config import InferConfigMessenger

__all__ = ["InferConfigMessenger"]

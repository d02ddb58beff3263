"""Pyro's module path ``pyro.poutine.trace_messenger``, kept for programs that import it."""

from ember.poutine.messengers.trace import TraceHandler, TraceMessenger, identify_dense_edges

__all__ = ["TraceHandler", "TraceMessenger", "identify_dense_edges"]

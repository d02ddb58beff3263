"""Helpers the handler test modules share: a handler composed with others, and pickling.

A composition is written once against a backend's ``poutine``, so the same program runs under
Ember and pyro-ppl (see :func:`~tests.parity._backends.run_both`).
"""

from __future__ import annotations

import functools
import io
import pickle
from typing import Any, Callable

import torch

from tests.parity._backends import Backend

Compose = Callable[[Backend, Callable[[], Any]], Callable[[], Any]]
"""``(backend, model) -> model`` wrapped in the handler under test and others, in some order."""


def compositions(
    handler: Compose, guide_trace: Callable[[Backend], Any], data: dict[str, torch.Tensor], hide: list[str]
) -> dict[str, Compose]:
    """The handler under test inside and outside each of ``replay``, ``condition`` and ``block``,
    and under an inner ``trace``, by name.

    :param handler: the handler under test, applied to a model.
    :param guide_trace: the trace ``replay`` replays.
    :param data: the values ``condition`` fixes.
    :param hide: the sites ``block`` hides.
    """
    return {
        "trace_of_trace": lambda b, m: b.poutine.trace(handler(b, m)),
        "replay_outside": lambda b, m: b.poutine.replay(handler(b, m), trace=guide_trace(b)),
        "replay_inside": lambda b, m: handler(b, b.poutine.replay(m, trace=guide_trace(b))),
        "condition_outside": lambda b, m: b.poutine.condition(handler(b, m), data=data),
        "condition_inside": lambda b, m: handler(b, b.poutine.condition(m, data=data)),
        "block_outside": lambda b, m: b.poutine.block(handler(b, m), hide=hide),
        "block_inside": lambda b, m: handler(b, b.poutine.block(m, hide=hide)),
    }


def traced_composition(compose: Compose, backend_model: Callable[[Backend], Any]) -> Callable[[Backend], Any]:
    """A program for ``run_both``: the composed model run once under an outer ``trace``, returning that trace.

    :param compose: the composition to run.
    :param backend_model: the model, written against a backend.
    """

    def program(b: Backend) -> Any:
        composed = compose(b, functools.partial(backend_model, b))
        with b.poutine.trace() as outer:
            composed()
        return outer.trace

    return program


def round_trip(obj: Any) -> Any:
    """``obj`` saved with :func:`torch.save` (highest pickle protocol) and loaded back."""
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buf.seek(0)
    return torch.load(buf, weights_only=False)

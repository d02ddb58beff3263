"""The message types every primitive and handler exchanges.

This module is the bottom of Ember's import graph: it imports only torch and the standard
library, so every other module can use these types without import cycles.

A :class:`Message` is a plain ``dict`` at runtime (Pyro programs index, copy and ``.get()``
trace nodes), typed as a ``TypedDict``. Keys that :func:`new_message` always sets are
required; keys that handlers or :class:`~ember.poutine.trace_struct.Trace` add later are
``NotRequired``, so reading them needs a membership test or ``.get``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, NamedTuple, Protocol, TypedDict, cast

import torch
from typing_extensions import NotRequired

__all__ = [
    "CondIndepStackFrame",
    "InferDict",
    "Message",
    "SiteFunction",
    "new_message",
]


class InferDict(TypedDict, total=False):
    """Per-site inference options, stored under ``msg["infer"]``.

    Every key is optional: a site starts with an empty dict and handlers fill it in.
    The underscore keys are written by enumeration, ``markov`` and
    :meth:`~ember.poutine.trace_struct.Trace.symbolize_dims`; users should not set them.
    """

    enumerate: str | None
    expand: bool
    is_auxiliary: bool
    is_observed: bool
    num_samples: int
    obs: torch.Tensor | None
    prior: Any
    tmc: str
    was_observed: bool
    baseline: dict[str, Any]
    _deterministic: bool
    _dim_to_symbol: dict[int, str]
    _do_not_trace: bool
    _enumerate_symbol: str
    _markov_scope: Counter[str]
    _enumerate_dim: int
    _dim_to_id: dict[int, int]
    _markov_depth: int
    _enum_total: int | None


class CondIndepStackFrame(NamedTuple):
    """One enclosing plate, as seen by a message.

    Equality and hashing ignore ``full_size`` (autoguides use it to rebuild subsampled
    plates) and compare tensor sizes by value.

    >>> f = CondIndepStackFrame("data", -1, 10, 0)
    >>> f.vectorized, str(f)
    (True, 'data')
    """

    name: str
    dim: int | None
    size: int
    counter: int
    full_size: int | None = None

    @property
    def vectorized(self) -> bool:
        return self.dim is not None

    def _key(self) -> tuple[str, int | None, int, int]:
        size: Any = self.size  # a tensor when a plate's size is traced by the JIT
        if isinstance(size, torch.Tensor):
            size = int(size.item())
        return (self.name, self.dim, size, self.counter)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CondIndepStackFrame):
            return False
        return self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.name


class SiteFunction(Protocol):
    """The static type of ``msg["fn"]``: what the default process calls for the value.

    On sample sites it is a distribution, so ``trace.nodes[name]["fn"].log_prob(value)``,
    ``.batch_shape`` and ``.event_shape`` type-check in user code. ``param`` and
    ``effectful`` sites carry a plain function under the same key (typed alike; those
    distribution attributes do not exist on them at run time).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    @property
    def batch_shape(self) -> torch.Size: ...

    @property
    def event_shape(self) -> torch.Size: ...

    def log_prob(self, value: torch.Tensor) -> torch.Tensor: ...


class Message(TypedDict):
    """The record of one effectful operation as it travels through the handler stack."""

    type: str
    name: str | None
    fn: SiteFunction
    is_observed: bool
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    value: Any
    scale: float | torch.Tensor
    mask: bool | torch.Tensor | None
    cond_indep_stack: tuple[CondIndepStackFrame, ...]
    done: bool
    stop: bool
    continuation: Callable[[Message], None] | None
    infer: InferDict
    obs: NotRequired[torch.Tensor | None]
    log_prob: NotRequired[torch.Tensor]
    log_prob_sum: NotRequired[torch.Tensor]
    unscaled_log_prob: NotRequired[torch.Tensor]
    score_parts: NotRequired[Any]
    packed: NotRequired[dict[str, Any]]
    _intervener_id: NotRequired[str | None]


def new_message(
    type: str,
    name: str | None,
    fn: object,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    value: Any = None,
    is_observed: bool = False,
    infer: InferDict | None = None,
    scale: float | torch.Tensor = 1.0,
    mask: bool | torch.Tensor | None = None,
    cond_indep_stack: tuple[CondIndepStackFrame, ...] = (),
    done: bool = False,
    stop: bool = False,
    continuation: Callable[[Message], None] | None = None,
) -> Message:
    """Build a :class:`Message` with every required key set; the one place that writes it.

    >>> msg = new_message("sample", "x", print)
    >>> msg["scale"], msg["mask"], msg["infer"], msg["done"]
    (1.0, None, {}, False)
    """
    return {
        "type": type,
        "name": name,
        # Any object is accepted (a distribution, a param getter, an effectful function,
        # or, under a handler that supplies the value, something not callable at all).
        "fn": cast(SiteFunction, fn),
        "is_observed": is_observed,
        "args": args,
        "kwargs": {} if kwargs is None else kwargs,
        "value": value,
        "scale": scale,
        "mask": mask,
        "cond_indep_stack": cond_indep_stack,
        "done": done,
        "stop": stop,
        "continuation": continuation,
        "infer": {} if infer is None else infer,
    }

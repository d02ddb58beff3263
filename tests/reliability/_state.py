"""What "no state left behind" means in these tests: stack, plate dims and param store as before."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import ember
from ember.poutine import _handler_state, runtime


@dataclass(frozen=True)
class State:
    """A snapshot of Ember's mutable state as one thread sees it."""

    stack: tuple[object, ...]
    plate_dims: tuple[str | None, ...]
    raw_plate_dims: tuple[object, ...]
    params: tuple[tuple[str, int, str, tuple[float, ...]], ...]
    grad_enabled: bool


def snapshot() -> State:
    store = ember.get_param_store()
    params = tuple(
        (name, id(leaf), repr(store._constraints[name]), tuple(leaf.detach().flatten().tolist()))
        for name, leaf in store.named_parameters()
    )
    return State(
        runtime.get_stack(),
        tuple(runtime._DIM_ALLOCATOR._stack),
        raw_plate_dims(),
        params,
        torch.is_grad_enabled(),
    )


def raw_plate_dims() -> tuple[object, ...]:
    """The plate-dim allocator's state as stored, dead runs' entries included."""
    value: tuple[object, ...] = _handler_state._PLATE_DIMS.get()
    return value


def store_lock_is_free() -> bool:
    """Whether another thread can take the param store's lock right now."""
    result: list[bool] = []

    def probe() -> None:
        lock = ember.get_param_store()._lock
        got = lock.acquire(timeout=1.0)
        if got:
            lock.release()
        result.append(got)

    import threading

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result == [True]


def as_float(value: torch.Tensor) -> float:
    return float(value.detach())


def leaf_of(value: torch.Tensor) -> torch.Tensor | None:
    """Follow a store value's ``.unconstrained`` link (the attribute torch does not declare)."""
    link = getattr(value, "unconstrained")
    leaf: torch.Tensor | None = link()
    return leaf

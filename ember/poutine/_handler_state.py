"""The per-thread handler state: the handler stack, the plate and enumeration dim allocators.

Everything here lives in :class:`contextvars.ContextVar` objects holding immutable values, so
each thread and each asyncio task has its own stack and dims. :mod:`ember.poutine.runtime`
walks this state (``apply_stack``) and re-exports what Pyro programs read from it
(``_DIM_ALLOCATOR``, ``_ENUM_ALLOCATOR``, ``restores_handler_state``, ...); Ember's own modules
import the private names from here. The rules that keep the state consistent under
interrupts are in the runtime's module docstring.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Callable, ClassVar, ParamSpec, Protocol, TypeVar

import torch

from ember.poutine.message import Message

__all__ = ["get_stack", "restores_handler_state", "set_stack"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


class _Frame(Protocol):
    """What the runtime needs from a stack entry (a :class:`~ember.poutine.messenger.Messenger`)."""

    _process_table: ClassVar[dict[str, Callable[[Any, Message], None]] | None]
    _postprocess_table: ClassVar[dict[str, Callable[[Any, Message], None]] | None]

    def _process_message(self, msg: Message) -> None: ...

    def _postprocess_message(self, msg: Message) -> None: ...

    def _reset(self) -> None: ...

    def _blocks_nonlocal_exit(self, msg: Message) -> bool: ...


_STACK: ContextVar[tuple[_Frame, ...]] = ContextVar("ember_handler_stack", default=())


def get_stack() -> tuple[_Frame, ...]:
    """The handler stack of the current thread or task, outermost first."""
    return _STACK.get()


def set_stack(stack: tuple[_Frame, ...]) -> None:
    """Replace the current thread's or task's handler stack (``set_stack(())`` clears it)."""
    _STACK.set(stack)


# Which plate holds which dim, per thread and task: entry ``i`` is ``(name, plate)`` for the
# plate holding dim ``-1 - i``, or ``None`` for a gap.
_PLATE_DIMS: ContextVar[tuple[tuple[str, object] | None, ...]] = ContextVar("ember_plate_dims", default=())


def _live_frames(stack: tuple[_Frame, ...]) -> set[int]:
    """Ids of the frames on ``stack`` and of the frames a ``block_messengers`` placeholder hides."""
    live = set()
    for frame in stack:
        live.add(id(frame))
        hidden = getattr(frame, "_hidden_frame", None)
        if hidden is not None:
            live.add(id(hidden))
    return live


class _DimAllocator:
    """Hands out plate dimensions, counted from the right (-1, -2, ...).

    The allocation state is per thread and task. A dim belongs to a plate *object*; a plate
    that is no longer on the handler stack (its run died between allocating and freeing,
    e.g. by a ``KeyboardInterrupt`` inside ``__exit__``) holds nothing, and the next
    allocation drops it, so a dead run never leaves ``duplicate plate`` errors behind.
    """

    @property
    def _stack(self) -> list[str | None]:
        """The names of the plates holding dims -1, -2, ... (``None`` for a free dim)."""
        held = _PLATE_DIMS.get()
        if not held:
            return []
        live = _live_frames(_STACK.get())
        names = [entry[0] if entry is not None and (entry[1] is None or id(entry[1]) in live) else None for entry in held]
        while names and names[-1] is None:
            names.pop()
        return names

    def allocate(self, name: str, dim: int | None, owner: object = None) -> int:
        held = _PLATE_DIMS.get()
        if held:
            live = _live_frames(_STACK.get())
            stack = [
                entry if entry is not None and (entry[1] is None or id(entry[1]) in live) else None
                for entry in held
            ]
        else:
            stack = []
        if any(entry is not None and entry[0] == name for entry in stack):
            raise ValueError(f"duplicate plate '{name}'")
        if dim is None:
            dim = -1 - next((i for i, entry in enumerate(stack) if entry is None), len(stack))
        elif dim >= 0:
            raise ValueError(f"Expected dim < 0 to index from the right, actual {dim}")
        index = -1 - dim
        stack.extend([None] * (index + 1 - len(stack)))
        holder = stack[index]
        if holder is not None:
            raise ValueError(
                f'at plates "{name}" and "{holder[0]}", collide at dim={dim}\n'
                f"\nTry moving the dim of one plate to the left, e.g. dim={dim - 1}"
            )
        stack[index] = (name, owner)
        while stack and stack[-1] is None:
            stack.pop()
        _PLATE_DIMS.set(tuple(stack))
        return dim

    def free(self, name: str, dim: int, owner: object = None) -> None:
        stack = list(_PLATE_DIMS.get())
        index = -1 - dim
        # Freeing what one does not hold is a no-op: after an interrupted run the dim may
        # already have been reclaimed.
        if index >= len(stack) or stack[index] is None or stack[index][1] is not owner:  # type: ignore[index]  # checked not None
            return
        stack[index] = None
        while stack and stack[-1] is None:
            stack.pop()
        _PLATE_DIMS.set(tuple(stack))


_DIM_ALLOCATOR = _DimAllocator()


class _EnumState:
    __slots__ = ("next_available_dim", "next_available_id", "dim_to_id")

    def __init__(self, next_available_dim: float, next_available_id: int, dim_to_id: dict[int, int]):
        self.next_available_dim = next_available_dim
        self.next_available_id = next_available_id
        self.dim_to_id = dim_to_id


class _EnumAllocator:
    """Hands out enumeration dimensions (to the left of all plates) and unique ids.

    The state persists across enumeration handlers until :meth:`set_first_available_dim`
    resets it, so a model enumerated after its guide allocates to the left of the guide's
    dims. It is per thread and task; each update stores a fresh state object.
    """

    _state: ContextVar[_EnumState] = ContextVar(
        "ember_enum_dims", default=_EnumState(-float("inf"), 0, {})
    )

    @property
    def next_available_dim(self) -> float:
        return self._state.get().next_available_dim

    @property
    def next_available_id(self) -> int:
        return self._state.get().next_available_id

    @property
    def dim_to_id(self) -> dict[int, int]:
        return self._state.get().dim_to_id

    def set_first_available_dim(self, first_available_dim: int) -> None:
        assert first_available_dim < 0, first_available_dim
        self._state.set(_EnumState(first_available_dim, 0, {}))

    def allocate(self, scope_dims: set[int] | None = None) -> tuple[int, int]:
        state = self._state.get()
        if state.next_available_dim == -float("inf"):
            raise ValueError(
                "max_plate_nesting must be set to a finite value for parallel enumeration"
            )
        id_ = state.next_available_id
        dim = int(state.next_available_dim)
        if scope_dims is None:
            self._state.set(_EnumState(dim - 1, id_ + 1, {**state.dim_to_id, dim: id_}))
        else:
            while dim in scope_dims:
                dim -= 1
            self._state.set(_EnumState(state.next_available_dim, id_ + 1, state.dim_to_id))
        return dim, id_


_ENUM_ALLOCATOR = _EnumAllocator()


def restores_handler_state(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Make ``fn`` leave the handler stack, plate dims and grad mode as it found them.

    For Ember's outermost entry points (``SVI.step``): whatever an interrupt cut short inside
    (a ``with`` block's ``__exit__`` that never ran, a ``torch.no_grad()`` left entered), the
    thread's state is restored when the exception leaves ``fn``. An outermost call also
    drops the dims a dead run left behind. Wrapped handler calls and ``TraceHandler`` calls
    do the same inline.

    >>> @restores_handler_state
    ... def run() -> tuple[object, ...]:
    ...     return get_stack()
    >>> run()
    ()
    """

    @functools.wraps(fn)
    def restoring(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        stack, dims, grad = _STACK.get(), _PLATE_DIMS.get(), torch.is_grad_enabled()
        try:
            return fn(*args, **kwargs)
        finally:
            # C calls only, and nothing before the first checks for signals. CPython checks
            # right after each call returns, so each step sits in the ``finally`` of the one
            # before: an interrupt landing between two steps cannot skip the rest.
            try:
                _STACK.set(stack)
            finally:
                try:
                    torch._C._set_grad_enabled(grad)
                finally:
                    _PLATE_DIMS.set(dims if stack else ())

    return restoring

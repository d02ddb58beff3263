"""Ember's effect runtime: the handler stack and the life of a message.

The life of a message
=====================
A *primitive* (:func:`ember.sample`, :func:`ember.param`, or any function wrapped by
:func:`effectful`) that runs while at least one handler is installed builds a
:class:`~ember.poutine.message.Message` with :func:`~ember.poutine.message.new_message` and
passes it to :func:`apply_stack`, which walks the handler stack in four steps:

1. **process**, innermost to outermost: each messenger's ``_process_message`` (by default
   its ``_pyro_<type>`` hook) may read or rewrite the message. A messenger that sets
   ``msg["stop"] = True`` hides the message from every messenger outside it.
2. **default**: :func:`default_process_message` computes ``msg["value"] = fn(*args, **kwargs)``
   unless the value is already known (``done``, observed, or set by a handler), then marks
   the message ``done``.
3. **postprocess**, outermost to innermost, over exactly the messengers that processed the
   message: ``_postprocess_message`` (by default ``_pyro_post_<type>``). ``trace`` records
   the site here, so an outer trace sees the message before inner messengers' postprocess.
4. **continuation**: if some messenger set ``msg["continuation"]``, it runs last (``escape``
   raises :class:`NonlocalExit` from here).

The primitive then returns ``msg["value"]``. With an empty stack a primitive calls its
function directly and builds no message at all.

Global state
============
This module and ``ember.poutine._handler_state`` own all of Ember's mutable global state.
The handler stack and the plate and enumeration dimension allocators (in ``_handler_state``,
re-exported here at Pyro's names) live in :class:`contextvars.ContextVar` objects holding
immutable values, so every thread and every asyncio task sees its own stack. The param store,
the validation flags and ``apply_stack``'s dispatch cache live here. The param store
is process-global, as in Pyro, and locks its own mutations. Which handler *objects* may be
shared between threads is listed in :mod:`ember.poutine.messenger`.

Interrupts
==========
A ``KeyboardInterrupt`` (or any exception) may land at any point CPython checks for signals,
including inside a messenger's ``__enter__`` or ``__exit__``. Three rules keep the state
consistent:

* a plate dim belongs to a plate *object*, and a plate that is not on the stack holds
  nothing: the next allocation reclaims the dims of a run that died;
* every outermost Ember entry point (a wrapped function's call, ``TraceHandler``'s call,
  ``SVI.step``; see :func:`restores_handler_state`) saves the stack, the dims and torch's
  grad mode on entry and restores them in ``finally`` with C calls chained through nested
  ``finally`` blocks, so no signal check can skip one; an outermost call clears the dims;
* a param whose creating ``param()`` call failed is removed again, and the store writes
  its maps in an order that leaves it usable when cut short.

A bare ``with`` block in user code at the top level is as safe as Python's ``with``
statement: an interrupt landing exactly at its ``__exit__``'s first bytecode leaves that
messenger installed in the thread. Run such blocks inside a function wrapped by a handler
(or clear the stack with ``runtime.set_stack(())``) where interrupts must be survived.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, overload

import torch

from ember.params._names import _MODULE_NAMESPACE_DIVIDER as _MODULE_NAMESPACE_DIVIDER  # Pyro's name here
from ember.params.param_store import ParamStoreDict
from ember.poutine import _handler_state
from ember.poutine._errors import not_a_distribution, value_error_like
# The allocators and their classes keep Pyro's private names here (Pyro code reads
# ``runtime._DIM_ALLOCATOR``); ``_Frame`` is for this module's own annotations.
from ember.poutine._handler_state import (
    _DIM_ALLOCATOR as _DIM_ALLOCATOR,
    _ENUM_ALLOCATOR as _ENUM_ALLOCATOR,
    _DimAllocator as _DimAllocator,
    _EnumAllocator as _EnumAllocator,
    _Frame,
    get_stack as get_stack,
    restores_handler_state as restores_handler_state,
    set_stack as set_stack,
)
from ember.poutine.message import CondIndepStackFrame, InferDict, Message, new_message

__all__ = [
    # Message and InferDict are re-exported because Pyro programs import them from here.
    "InferDict",
    "Message",
    "NonlocalExit",
    "am_i_wrapped",
    "apply_stack",
    "default_process_message",
    "effectful",
    "get_mask",
    "get_plates",
    "not_a_distribution",
    "restores_handler_state",
    "value_error_like",
]

_T = TypeVar("_T")

# Bound by assignment, not imported: CPython 3.11 compiles ``name.get()`` on an imported name as
# a module attribute call (LOAD_ATTR and a bound method) rather than LOAD_METHOD, which cost
# apply_stack ~30 ns a message (timeit, two pass-through handlers: about 545 -> 575 ns).
_STACK = _handler_state._STACK


# The process-global parameter store (Pyro's ``_PYRO_PARAM_STORE``).
_PYRO_PARAM_STORE = ParamStoreDict()

# Validation flags for poutine and infer; ``ember.distributions`` uses torch's own default.
_VALIDATION_ENABLED = __debug__
_INFER_VALIDATION_ENABLED = __debug__


def __getattr__(name: str) -> Any:
    # Pyro code and tests read ``runtime._PYRO_STACK`` as a list; give them a snapshot.
    if name == "_PYRO_STACK":
        return list(_STACK.get())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_validation(poutine: bool | None = None, infer: bool | None = None) -> None:
    global _VALIDATION_ENABLED, _INFER_VALIDATION_ENABLED
    if poutine is not None:
        _VALIDATION_ENABLED = poutine
    if infer is not None:
        _INFER_VALIDATION_ENABLED = infer


def is_validation_enabled() -> bool:
    return _VALIDATION_ENABLED


def is_infer_validation_enabled() -> bool:
    return _INFER_VALIDATION_ENABLED


class NonlocalExit(Exception):
    """Raised (from a continuation) to abandon the rest of a model run at ``site``.

    :param site: the message at which execution stopped.
    """

    def __init__(self, site: Message, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = site

    def reset_stack(self) -> None:
        """Reset the enclosing messengers, innermost first, up to one that blocks the site."""
        for frame in reversed(_STACK.get()):
            frame._reset()
            if frame._blocks_nonlocal_exit(self.site):
                break


def default_process_message(msg: Message) -> None:
    """Step 2 of the lifecycle: compute the value unless it is already known.

    This is the one place a sample site's ``fn`` must be callable: a handler earlier in
    the stack may have supplied the value for a ``fn`` that is not (Pyro's lazy-evaluation
    handlers rely on that).
    """
    if not (msg["done"] or msg["is_observed"] or msg["value"] is not None):
        fn = msg["fn"]
        if not callable(fn):
            raise not_a_distribution(msg["name"], fn)
        msg["value"] = fn(*msg["args"], **msg["kwargs"])
    msg["done"] = True


_Hooks = tuple[tuple[tuple[int, _Frame, Callable[..., None], bool], ...], tuple[tuple[int, _Frame, Callable[..., None], bool], ...]]

# The dispatch lists of the last stack seen, per message type: ``(stack, {type: hooks})``,
# replaced as one object so that threads with different stacks never mix their lists.
_DISPATCH: tuple[tuple[_Frame, ...] | None, dict[str, _Hooks]] = (None, {})


def _invalidate_dispatch() -> None:
    """Forget the dispatch lists (a messenger class's hook tables were rebuilt)."""
    global _DISPATCH
    _DISPATCH = (None, {})


def _dispatch(stack: tuple[_Frame, ...], msg_type: str) -> _Hooks:
    """Per frame that acts on ``msg_type``: ``(index, frame, hook, bound)``, in walking order."""
    global _DISPATCH
    cache = _DISPATCH
    if cache[0] is not stack:
        cache = _DISPATCH = (stack, {})
    hooks = cache[1].get(msg_type)
    if hooks is None:
        process: list[tuple[int, _Frame, Callable[..., None], bool]] = []
        post: list[tuple[int, _Frame, Callable[..., None], bool]] = []
        for index, frame in enumerate(stack):
            table = frame._process_table
            if table is None:
                process.append((index, frame, frame._process_message, True))
            elif (hook := table.get(msg_type)) is not None:
                process.append((index, frame, hook, False))
            table = frame._postprocess_table
            if table is None:
                post.append((index, frame, frame._postprocess_message, True))
            elif (hook := table.get(msg_type)) is not None:
                post.append((index, frame, hook, False))
        process.reverse()
        hooks = cache[1][msg_type] = (tuple(process), tuple(post))
    return hooks


def _process_from(stack: tuple[_Frame, ...], msg: Message, start: int) -> int:
    """Step 1 from stack index ``start`` outwards, reading the type per frame; the last index reached."""
    for index in range(start, -1, -1):
        frame = stack[index]
        table = frame._process_table
        if table is None:
            frame._process_message(msg)
        else:
            hook = table.get(msg["type"])
            if hook is not None:
                hook(frame, msg)
        if msg["stop"]:
            return index
    return 0


def apply_stack(msg: Message) -> None:
    """Run ``msg`` through the current handler stack (see the module docstring).

    The frames that act on a message type are listed once per stack (a new stack is a new
    tuple, so the lists are rebuilt when it changes), and messengers that keep the base
    ``_process_message`` are called straight from their class's hook table, so frames that
    ignore a message cost nothing. A messenger that changes the message's type (``lift``
    turns params into samples) sends it on by the per-frame lookup for the new type.
    """
    stack = _STACK.get()
    msg_type = msg["type"]
    process, post = _dispatch(stack, msg_type)
    first = 0  # the outermost stack index the message reached
    for index, frame, hook, bound in process:
        if bound:
            hook(msg)
        else:
            hook(frame, msg)
        if msg["stop"]:
            first = index
            break
        if msg["type"] != msg_type:
            first = _process_from(stack, msg, index - 1)
            break

    default_process_message(msg)

    post_type = msg["type"]
    if post_type == msg_type:
        for index, frame, hook, bound in post:
            if index < first:
                continue
            if bound:
                hook(msg)
            else:
                hook(frame, msg)
            if msg["type"] != msg_type:
                _postprocess_from(stack, msg, index + 1)
                break
    else:
        _postprocess_from(stack, msg, first)

    continuation = msg["continuation"]
    if continuation is not None:
        continuation(msg)


def _postprocess_from(stack: tuple[_Frame, ...], msg: Message, start: int) -> None:
    for frame in stack[start:]:
        table = frame._postprocess_table
        if table is None:
            frame._postprocess_message(msg)
        else:
            hook = table.get(msg["type"])
            if hook is not None:
                hook(frame, msg)


def am_i_wrapped() -> bool:
    """Whether any handler is installed in the current thread or task."""
    return bool(_STACK.get())


@overload
def effectful(fn: None = None, type: str | None = None) -> Callable[[Callable[..., _T]], Callable[..., _T]]: ...


@overload
def effectful(fn: Callable[..., _T], type: str | None = None) -> Callable[..., _T]: ...


def effectful(
    fn: Callable[..., _T] | None = None, type: str | None = None
) -> Callable[..., _T] | Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Turn ``fn`` into a primitive of the given ``type`` that handlers can intercept.

    The result takes three extra keyword arguments, ``name``, ``infer`` and ``obs``, that are
    not passed on to ``fn``. With no handler installed it simply returns
    ``fn(*args, **kwargs)``.

    :param fn: the function to wrap; omit it to use ``effectful(type=...)`` as a decorator.
    :param type: the message type, e.g. ``"sample"``; any string but ``"message"``.

    >>> double = effectful(lambda x: 2 * x, type="double")
    >>> double(3, name="d")
    6
    """
    if fn is None:

        def decorator(inner: Callable[..., _T]) -> Callable[..., _T]:
            return effectful(inner, type=type)

        return decorator
    if getattr(fn, "_is_effectful", False):
        return fn
    assert type is not None, f"must provide a type label for operation {fn}"
    assert type != "message", "cannot use 'message' as keyword"
    op_type: str = type
    wrapped_fn: Callable[..., _T] = fn

    @functools.wraps(fn)
    def _effectful_fn(
        *args: Any,
        name: str | None = None,
        infer: InferDict | None = None,
        obs: Any = None,
        **kwargs: Any,
    ) -> _T:
        if not _STACK.get():
            return wrapped_fn(*args, **kwargs)
        msg = new_message(
            op_type,
            name,
            wrapped_fn,
            args,
            kwargs,
            value=obs,
            is_observed=obs is not None,
            infer=infer,
        )
        apply_stack(msg)
        value: _T = msg["value"]
        return value

    _effectful_fn._is_effectful = True  # type: ignore[attr-defined]  # marker read by effectful itself
    return _effectful_fn


def _inspect() -> Message:
    """Send an untraced ``inspect`` message through the whole stack and return it."""
    msg = new_message(
        "inspect",
        "_pyro_inspect",
        lambda: True,
        infer={"_do_not_trace": True},
    )
    apply_stack(msg)
    return msg


def get_mask() -> bool | torch.Tensor | None:
    """The mask the enclosing ``mask`` handlers would apply here (``None`` if none).

    Expensive computations that only matter for log densities can be skipped when this
    returns ``False``, e.g. under :class:`~ember.infer.Predictive`.
    """
    if not _STACK.get():
        return None
    return _inspect()["mask"]


def get_plates() -> tuple[CondIndepStackFrame, ...]:
    """The enclosing plates, outermost first."""
    if not _STACK.get():
        return ()
    return _inspect()["cond_indep_stack"]

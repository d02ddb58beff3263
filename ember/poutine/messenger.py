"""The :class:`Messenger` base class: an effect handler on the handler stack.

A messenger changes steps 1 and 3 of a message's life (see :mod:`ember.poutine.runtime`)
through hooks named after the message type: ``_pyro_sample(msg)`` runs while the message is
processed, ``_pyro_post_sample(msg)`` while it is postprocessed. Each class collects its hooks
into tables once, when the class is created, so the runtime looks a hook up in a dict
instead of formatting a name and calling ``getattr`` for every message at every frame.
Overriding ``_process_message`` or ``_postprocess_message`` still works and then sees every
message type, as in Pyro.

Sharing handler objects across threads and tasks
================================================
The handler stack is per thread and per asyncio task (see :mod:`ember.poutine.runtime`), so
what matters is which *objects* may be used by many of them at once:

* **Wrapped functions are shareable.** ``trace(model)``, ``condition(model, data)``,
  ``trace(condition(model, ...))``, ``replay``, ``substitute``, ``do``, ``lift``, ``enum``,
  ``collapse``, ``equalize``, ``reparam``, ``markov`` and the stateless handlers (``block``,
  ``scale``, ``mask``, ``infer_config``, ``uncondition``, ``escape``, ``broadcast``): a
  call of the wrapped function runs a messenger that records per-run state
  (``_copy_per_call``) only while no other call uses it, and a shallow copy of it otherwise,
  so a module-level ``trace(condition(model))`` may serve many threads while a lone caller
  pays nothing for it. ``TraceHandler.get_trace`` returns the calling thread's own trace; the shared
  ``.trace`` attribute holds whichever call finished last.
* **Messenger instances used with ``with`` are not.** ``with tracer:`` records into
  ``tracer`` itself: enter one instance in one thread or task at a time (create one per
  use, as ``with poutine.trace() as tr:`` does). The same holds for plate objects, a
  ``markov`` instance iterated by hand, and a user's own messenger subclasses (which keep
  Pyro's behaviour: their wrapped calls run the instance itself).
* **Shared configuration must not be mutated** while calls run: the ``data`` dict of a
  ``condition``, the trace given to ``replay``, reparameterizer objects.
* The **param store** is process-global and locks its own mutations; ``seed`` reseeds
  torch's process-global generator (see :mod:`ember.poutine.seed_messenger`).

A wrapped call also restores the handler stack and plate dims when it ends, whatever an
interrupt cut short inside it.
"""

from __future__ import annotations

import copy
import functools
import inspect
import reprlib
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Callable, ClassVar, Generic, Iterator, ParamSpec, TypeVar, cast, overload

import torch
from typing_extensions import Self

from ember.poutine import _handler_state
from ember.poutine._handler_state import _Frame
from ember.poutine.message import Message
from ember.poutine.runtime import _invalidate_dispatch

__all__ = [
    "BindsAsMethod",
    "Message",  # re-exported: Pyro programs import it from pyro.poutine.messenger
    "Messenger",
    "block_messengers",
    "unwrap",
]

# Bound by assignment (see ember.poutine.runtime): CPython 3.11 calls a method of an imported
# name through LOAD_ATTR, of an assigned one through the faster LOAD_METHOD.
_PLATE_DIMS = _handler_state._PLATE_DIMS
_STACK = _handler_state._STACK

_P = ParamSpec("_P")
_T = TypeVar("_T")

_Hook = Callable[[Any, Message], None]


def _context_wrap(context: Messenger, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    taken = False
    if context._copy_per_call:
        # What one call records lives on a messenger no other call uses at the same time,
        # so one wrapped function may run in many threads and tasks at once.
        context, taken = context._take_for_call()
    stack = _STACK.get()
    if stack:
        # Nested: if an interrupt cuts an ``__exit__`` short in here, the enclosing
        # messengers' exits and the outermost call below repair the state.
        try:
            with context:
                return fn(*args, **kwargs)
        finally:
            if taken:
                context._idle.append(True)
    grad = torch.is_grad_enabled()
    try:
        with context:
            return fn(*args, **kwargs)
    finally:
        if taken:
            context._idle.append(True)
        # Whatever an interrupt left half-done inside (a messenger's ``__exit__``, or a
        # ``torch.no_grad()`` exit, cut short), the call leaves the stack, the plate dims and
        # the grad mode as it found them (see ``runtime.restores_handler_state``).
        try:
            _STACK.set(stack)
        finally:
            try:
                torch._C._set_grad_enabled(grad)
            finally:
                _PLATE_DIMS.set(())  # an outermost call: nothing outside holds a dim


class _bound_partial(functools.partial[Any]):
    """A picklable partial that binds like a function when used as a method decorator."""

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self, instance)


class BindsAsMethod(Generic[_T]):
    """Lets a callable handler object decorate a method: looked up on an instance, it binds it.

    Subclasses define ``__call__`` returning ``_T``.
    """

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., _T]: ...

    def __get__(self, instance: object, owner: type | None = None) -> Self | Callable[..., _T]:
        if instance is None:
            return self
        call = cast(Callable[..., _T], self)
        return functools.partial(call, instance)


def unwrap(fn: Any) -> Any:
    """Strip the handler layers added by :meth:`Messenger.__call__` from ``fn``.

    ``trace`` and ``reparam`` return handler objects of their own, which are not stripped.
    """
    while isinstance(fn, functools.partial) and fn.func is _context_wrap and len(fn.args) == 2:
        fn = fn.args[1]
    return fn


def _hook_caller(cls: type, attr_name: str) -> _Hook:
    """A ``(messenger, msg)`` callable for the hook ``attr_name`` as ``cls`` resolves it."""
    attr = inspect.getattr_static(cls, attr_name)
    if isinstance(attr, staticmethod):
        func = attr.__func__
        return lambda _self, msg: func(msg)
    if inspect.isfunction(attr):
        hook: _Hook = attr
        return hook
    return lambda self, msg: getattr(self, attr_name)(msg)


class Messenger:
    """Base class of every effect handler.

    Use an instance as a context manager (``with TraceMessenger() as tr: ...``) or call it on
    a function to get a wrapped function that runs inside it. Subclasses define
    ``_pyro_<type>`` / ``_pyro_post_<type>`` hooks, or override ``_process_message`` /
    ``_postprocess_message`` to see every message.

    >>> with Messenger() as m:
    ...     am_i_wrapped = bool(_STACK.get())
    >>> am_i_wrapped, _STACK.get()
    (True, ())
    """

    # Hook tables, built per class (see ``_build_tables``). ``_process_table`` is None when
    # the class overrides ``_process_message``, telling the runtime to call that instead.
    _process_hooks: ClassVar[dict[str, _Hook]] = {}
    _postprocess_hooks: ClassVar[dict[str, _Hook]] = {}
    _process_table: ClassVar[dict[str, _Hook] | None] = {}
    _postprocess_table: ClassVar[dict[str, _Hook] | None] = {}
    # Messengers that keep per-run state set this: a call of a function they wrap then runs
    # the instance only if no other call is using it, else a copy (:meth:`_take_for_call`).
    _copy_per_call: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._build_tables()

    @classmethod
    def _build_tables(cls) -> None:
        process: dict[str, _Hook] = {}
        postprocess: dict[str, _Hook] = {}
        for attr_name in dir(cls):
            if attr_name.startswith("_pyro_post_"):
                postprocess[attr_name[len("_pyro_post_") :]] = _hook_caller(cls, attr_name)
            elif attr_name.startswith("_pyro_"):
                process[attr_name[len("_pyro_") :]] = _hook_caller(cls, attr_name)
        cls._process_hooks = process
        cls._postprocess_hooks = postprocess
        overrides_process = cls._process_message is not Messenger._process_message
        overrides_post = cls._postprocess_message is not Messenger._postprocess_message
        cls._process_table = None if overrides_process else process
        cls._postprocess_table = None if overrides_post else postprocess
        _invalidate_dispatch()  # ``apply_stack``'s lists hold hooks from the old tables

    @classmethod
    def _rebuild_tables_below(cls) -> None:
        cls._build_tables()
        for sub in cls.__subclasses__():
            sub._rebuild_tables_below()

    def __repr__(self) -> str:
        """The class and its settings: each ``__init__`` parameter kept as an attribute."""
        settings = []
        try:
            parameters = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        except (TypeError, ValueError):  # an __init__ without an introspectable signature
            parameters = []
        for parameter in parameters:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            for attr in (parameter.name, "_" + parameter.name):
                if attr in self.__dict__:
                    settings.append(f"{parameter.name}={reprlib.repr(self.__dict__[attr])}")
                    break
        return f"{type(self).__name__}({', '.join(settings)})"

    def __enter__(self) -> Self:
        stack = _STACK.get()
        if any(frame is self for frame in stack):
            raise ValueError("cannot install a Messenger instance twice")
        _STACK.set((*stack, self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack = _STACK.get()
        if stack and stack[-1] is self:
            _STACK.set(stack[:-1])
            return
        if exc_type is None:
            raise ValueError("This Messenger is not on the bottom of the stack")
        # On an exception, drop this messenger and everything entered after it, so the
        # stack is as it was before ``__enter__`` whatever depth the error came from.
        for index, frame in enumerate(stack):
            if frame is self:
                _STACK.set(stack[:index])
                return

    def __call__(self, fn: Callable[_P, _T]) -> Callable[_P, _T]:
        if not callable(fn):
            raise ValueError(f"{fn!r} is not callable, did you mean to pass it as a keyword arg?")
        wrapper = _bound_partial(_context_wrap, self, fn)
        functools.update_wrapper(wrapper, fn, updated=())
        return wrapper

    def __init__(self) -> None:
        super().__init__()  # cooperative: a messenger may also be a torch.nn.Module
        # A one-token pool: the call that pops the token runs this instance itself, a call
        # arriving while it is out runs a copy (``list.pop`` and ``append`` are atomic).
        self._idle = [True]

    def _copy_for_call(self) -> Self:
        """A copy that one call of a wrapped function runs under (when ``_copy_per_call``).

        Shallow: configuration (``data``, ``trace``, ...) is shared, and each class resets its
        per-run state in ``__enter__`` (or overrides this method to do it here).
        """
        if not hasattr(self, "__dict__"):  # a subclass with __slots__
            return copy.copy(self)
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._idle = []  # a copy serves one call only
        return clone

    def _take_for_call(self) -> tuple[Self, bool]:
        """This instance if no other call is using it, else a copy; and whether it was taken.

        A taken instance must be handed back with ``self._idle.append(True)``. Running the
        instance itself when it is free keeps the common single-threaded call as cheap as
        Pyro's; only concurrent (or recursive) calls pay for a copy.
        """
        idle = getattr(self, "_idle", None)
        if idle:
            try:
                idle.pop()
            except IndexError:  # another thread took it between the check and the pop
                pass
            else:
                return self, True
        return self._copy_for_call(), False

    def _process_message(self, msg: Message) -> None:
        hook = self._process_hooks.get(msg["type"])
        if hook is not None:
            hook(self, msg)

    def _postprocess_message(self, msg: Message) -> None:
        hook = self._postprocess_hooks.get(msg["type"])
        if hook is not None:
            hook(self, msg)

    def _reset(self) -> None:
        """Forget per-run state; called by :meth:`~ember.poutine.runtime.NonlocalExit.reset_stack`."""

    def _blocks_nonlocal_exit(self, msg: Message) -> bool:
        """Whether :meth:`NonlocalExit.reset_stack` stops at this messenger for ``msg``."""
        return False

    @classmethod
    def register(
        cls, fn: Callable[[Message], Any] | None = None, type: str | None = None, post: bool | None = None
    ) -> Any:
        """Install ``fn`` as this class's hook for messages of ``type``.

        :param fn: the hook, called with the message; omit it to use ``register`` as a decorator.
        :param type: the message type.
        :param post: install a postprocess hook (``_pyro_post_<type>``) instead.
        """
        if fn is None:
            return lambda f: cls.register(f, type=type, post=post)
        if type is None:
            raise ValueError("An operation type name must be provided")
        setattr(cls, ("_pyro_post_" if post else "_pyro_") + type, staticmethod(fn))
        cls._rebuild_tables_below()
        return fn

    @classmethod
    def unregister(cls, fn: Callable[[Message], Any] | None = None, type: str | None = None) -> Any:
        """Remove this class's process and postprocess hooks for ``type``."""
        if type is None:
            raise ValueError("An operation type name must be provided")
        for attr_name in ("_pyro_post_" + type, "_pyro_" + type):
            if attr_name in cls.__dict__:
                delattr(cls, attr_name)
        cls._rebuild_tables_below()
        return fn


Messenger._build_tables()


@contextmanager
def block_messengers(predicate: Callable[[Messenger], bool]) -> Iterator[list[Messenger]]:
    """Temporarily replace installed messengers matching ``predicate`` by inert ones.

    The replaced messengers are neither exited nor re-entered. Yields the list of them.
    """
    stack = _STACK.get()
    blocked: list[Messenger] = []
    swapped: dict[int, Messenger] = {}
    new_stack: list[_Frame] = []
    for frame in stack:
        if isinstance(frame, Messenger) and predicate(frame):
            blocked.append(frame)
            placeholder = Messenger()
            # The hidden messenger still holds what it allocated (a plate keeps its dim).
            placeholder._hidden_frame = frame  # type: ignore[attr-defined]  # read by _handler_state._live_frames
            swapped[id(placeholder)] = frame
            new_stack.append(placeholder)
        else:
            new_stack.append(frame)
    _STACK.set(tuple(new_stack))
    try:
        yield blocked
    finally:
        _STACK.set(tuple(swapped.get(id(frame), frame) for frame in _STACK.get()))

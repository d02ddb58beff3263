"""``queue``: run a program to completion from a queue of partial traces.

Sequential enumeration of discrete sites. ``queue`` is not a messenger: it re-runs the
program. Each try takes a partial trace from the queue, replays it, and escapes at the
first site the trace lacks (by default an unobserved discrete one). On that
:class:`~ember.poutine.runtime.NonlocalExit` it resets the enclosing messengers (so an
outer ``trace`` forgets the abandoned run), puts the partial trace extended at the escaped
site (by default, once per value of its support) back in the queue, and tries again. The
first run that completes returns its value.
"""

from __future__ import annotations

import functools
from typing import Callable, Generic, Iterable, ParamSpec, Protocol, TypeVar, overload


from ember.poutine.message import Message
from ember.poutine.messenger import BindsAsMethod
from ember.poutine.escape_messenger import EscapeMessenger
from ember.poutine.replay_messenger import ReplayMessenger
from ember.poutine.trace_messenger import TraceMessenger
from ember.poutine.runtime import NonlocalExit
from ember.poutine.trace_struct import Trace
from ember.poutine.util import discrete_escape, enum_extend

__all__ = ["QueueDecorator", "QueueHandler", "TraceQueue", "queue"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

ExtendFn = Callable[..., Iterable[Trace]]
EscapeFn = Callable[[Trace, Message], bool]


class TraceQueue(Protocol):
    """What ``queue`` needs from its queue (:class:`queue.Queue`, ``multiprocessing.Queue``, ...)."""

    def empty(self) -> bool: ...

    def get(self) -> Trace: ...

    def put(self, item: Trace, /) -> None: ...


class _QueueOptions:
    """The options of :func:`queue`, held alike by :class:`QueueDecorator` and :class:`QueueHandler`."""

    def __init__(
        self,
        queue: TraceQueue | None,
        max_tries: int,
        extend_fn: ExtendFn,
        escape_fn: EscapeFn,
        num_samples: int,
    ) -> None:
        self.queue = queue
        self.max_tries = max_tries
        self.extend_fn = extend_fn
        self.escape_fn = escape_fn
        self.num_samples = num_samples


class QueueHandler(_QueueOptions, BindsAsMethod[_T], Generic[_P, _T]):
    """``fn`` run from a queue of partial traces; see :func:`queue`.

    Picklable when ``fn``, the queue and the helper functions are, and binds ``self`` when it
    decorates a method.
    """

    # Copied from ``fn`` by ``functools.update_wrapper``.
    __name__: str
    __wrapped__: Callable[_P, _T]

    def __init__(
        self,
        fn: Callable[_P, _T],
        queue: TraceQueue | None,
        max_tries: int,
        extend_fn: ExtendFn,
        escape_fn: EscapeFn,
        num_samples: int,
    ) -> None:
        self.fn = fn
        super().__init__(queue, max_tries, extend_fn, escape_fn, num_samples)
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        partial_traces = self.queue
        if partial_traces is None:
            # Pyro fails here too, with an AttributeError on ``None.empty``.
            raise AttributeError("queue: no queue of partial traces was given (queue=None)")
        for _ in range(self.max_tries):
            if partial_traces.empty():
                # Pyro checks with an ``assert``: same error type here, but raised under ``-O`` too.
                raise AssertionError("trying to get() from an empty queue will deadlock")
            next_trace = partial_traces.get()
            tracer = TraceMessenger()
            escaper = EscapeMessenger(functools.partial(self.escape_fn, next_trace))
            run = tracer(escaper(ReplayMessenger(trace=next_trace)(self.fn)))
            try:
                return run(*args, **kwargs)
            except NonlocalExit as leave:
                leave.reset_stack()
                for extended in self.extend_fn(tracer.trace.copy(), leave.site, num_samples=self.num_samples):
                    partial_traces.put(extended)
        raise ValueError(f"max tries ({self.max_tries}) exceeded")

    def __repr__(self) -> str:
        return f"<queue {getattr(self.fn, '__qualname__', self.fn)!r}>"


class QueueDecorator(_QueueOptions):
    """``queue`` with its options but no function yet: call it on the function to wrap."""

    def __call__(self, fn: Callable[_P, _T]) -> QueueHandler[_P, _T]:
        _check_callable(fn)
        return QueueHandler(fn, self.queue, self.max_tries, self.extend_fn, self.escape_fn, self.num_samples)


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise ValueError(f"{fn!r} is not callable, did you mean to pass it as a keyword arg?")


@overload
def queue(
    fn: None = None,
    queue: TraceQueue | None = None,
    max_tries: int | None = None,
    extend_fn: ExtendFn | None = None,
    escape_fn: EscapeFn | None = None,
    num_samples: int | None = None,
) -> QueueDecorator: ...


@overload
def queue(
    fn: Callable[_P, _T],
    queue: TraceQueue | None = None,
    max_tries: int | None = None,
    extend_fn: ExtendFn | None = None,
    escape_fn: EscapeFn | None = None,
    num_samples: int | None = None,
) -> QueueHandler[_P, _T]: ...


def queue(
    fn: Callable[_P, _T] | None = None,
    queue: TraceQueue | None = None,
    max_tries: int | None = None,
    extend_fn: ExtendFn | None = None,
    escape_fn: EscapeFn | None = None,
    num_samples: int | None = None,
) -> QueueDecorator | QueueHandler[_P, _T]:
    """Run ``fn`` until one run completes, extending partial traces taken from ``queue``.

    Used for sequential enumeration of discrete sites: seed the queue with an empty
    :class:`~ember.poutine.trace_struct.Trace`, then call the wrapped function repeatedly;
    each call returns the value of one complete run, and the completed traces cover the
    support of the discrete sites one combination at a time. There is no context-manager
    form, since the function must be re-run.

    :param fn: the function to run; omit it to get a decorator.
    :param queue: holds the partial traces (``empty``, ``get`` and ``put``).
    :param max_tries: the most runs one call may start (default ``10**6``); beyond it,
        ``ValueError``.
    :param extend_fn: ``(trace, site, num_samples=...)`` -> traces extended at ``site``
        (default :func:`~ember.poutine.util.enum_extend`).
    :param escape_fn: ``(trace, msg)`` -> whether to stop at ``msg``
        (default :func:`~ember.poutine.util.discrete_escape`).
    :param num_samples: passed to ``extend_fn`` (default ``-1``).

    >>> import queue as stdlib_queue
    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_struct import Trace
    >>> def coin():
    ...     return ember.sample("c", dist.Bernoulli(0.5))
    >>> partial_traces = stdlib_queue.LifoQueue()
    >>> partial_traces.put(Trace())
    >>> enumerated = queue(coin, queue=partial_traces, num_samples=5)
    >>> enumerated(), enumerated()
    (tensor(1.), tensor(0.))
    """
    decorator = QueueDecorator(
        queue,
        int(1e6) if max_tries is None else max_tries,
        enum_extend if extend_fn is None else extend_fn,
        discrete_escape if escape_fn is None else escape_fn,
        -1 if num_samples is None else num_samples,
    )
    if fn is None:
        return decorator
    return decorator(fn)

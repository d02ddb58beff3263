"""``trace``: record every sample and param site into a :class:`~ember.poutine.trace_struct.Trace`.

Changes step 3 (postprocess) of ``sample`` and ``param`` messages: each is copied into the
trace as a node. Because postprocess runs outermost first, a trace records a site before
messengers inside it finish postprocessing it. As a function wrapper it also records the
``_INPUT`` and ``_RETURN`` nodes.

A traced function (:class:`TraceHandler`) records a call into its messenger only while no
other call uses it, and into a copy otherwise, so one traced function may run in many threads
and asyncio tasks at once: ``get_trace`` returns the caller's trace, and ``.trace`` the last
finished call's. A
``TraceMessenger`` entered with ``with`` records into itself: one user at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, ParamSpec, TypeVar

import torch
from typing_extensions import Self

from ember.poutine import _handler_state
from ember.poutine.message import Message
from ember.poutine.messenger import BindsAsMethod, Messenger
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample

__all__ = ["TraceHandler", "TraceMessenger", "identify_dense_edges"]

# Bound by assignment (see ember.poutine.runtime): CPython 3.11 calls a method of an imported
# name through LOAD_ATTR, of an assigned one through the faster LOAD_METHOD.
_PLATE_DIMS = _handler_state._PLATE_DIMS
_STACK = _handler_state._STACK

_P = ParamSpec("_P")
_T = TypeVar("_T")


def identify_dense_edges(trace: Trace) -> None:
    """Add an edge from every earlier sample site to each later one they may influence.

    Two sites are independent, and get no edge, when they sit in different iterations
    (``counter``) of the same sequential plate. Subsample sites take no part.
    """
    sites = [
        (name, site)
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site)
    ]
    for position, (name, site) in enumerate(sites):
        for past_name, past_site in sites[:position]:
            independent = any(
                query.name == target.name and query.counter != target.counter
                for query, target in zip(site["cond_indep_stack"], past_site["cond_indep_stack"])
            )
            if not independent:
                trace.add_edge(past_name, name)


class TraceMessenger(Messenger):
    """Record the sites of a run; ``get_trace()`` returns a copy of the record.

    :param graph_type: ``"flat"`` (no edges) or ``"dense"`` (dependency edges).
    :param param_only: record only param sites.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> with TraceMessenger() as tracer:
    ...     x = ember.sample("x", dist.Normal(0.0, 1.0))
    >>> list(tracer.get_trace().nodes)
    ['x']
    """

    _copy_per_call = True  # per-run state: each call of a wrapped function gets a copy

    def __init__(self, graph_type: str | None = None, param_only: bool | None = None) -> None:
        super().__init__()
        graph_type = "flat" if graph_type is None else graph_type
        if graph_type not in ("flat", "dense"):
            # AssertionError is the type Pyro raises here.
            raise AssertionError(f"{graph_type} not a valid graph type: expected 'flat' or 'dense'")
        self.graph_type = graph_type
        self.param_only = bool(param_only)
        self.trace = Trace(graph_type=self.graph_type)

    def __enter__(self) -> Self:
        self.trace = Trace(graph_type=self.graph_type)
        return super().__enter__()

    def __exit__(self, *args: Any) -> None:
        # Leave the stack first, so an interrupt in the bookkeeping below cannot keep us on it.
        super().__exit__(*args)
        if self.param_only:
            for name in [n for n, site in self.trace.nodes.items() if site["type"] != "param"]:
                self.trace.remove_node(name)
        if self.graph_type == "dense":
            identify_dense_edges(self.trace)

    def __call__(self, fn: Callable[_P, _T]) -> TraceHandler[_P, _T]:
        return TraceHandler(self, fn)

    def get_trace(self) -> Trace:
        """A shallow copy of the recorded trace."""
        return self.trace.copy()

    def _reset(self) -> None:
        fresh = Trace(graph_type=self.graph_type)
        if "_INPUT" in self.trace.nodes:
            inputs = self.trace.nodes["_INPUT"]
            fresh.add_node("_INPUT", name="_INPUT", type="input", args=inputs["args"], kwargs=inputs["kwargs"])
        self.trace = fresh

    def _pyro_post_sample(self, msg: Message) -> None:
        if self.param_only:
            return
        if msg["infer"].get("_do_not_trace"):
            assert msg["infer"].get("is_auxiliary")
            assert not msg["is_observed"]
            return
        self.trace._add_site(msg["name"] or "", msg.copy())

    def _pyro_post_param(self, msg: Message) -> None:
        self.trace._add_site(msg["name"] or "", msg.copy())


class TraceHandler(BindsAsMethod[_T], Generic[_P, _T]):
    """A function run under a :class:`TraceMessenger`, recording ``_INPUT`` and ``_RETURN``.

    A ``ValueError`` or ``RuntimeError`` raised inside is re-raised as the same type with
    the shape table of the partial trace appended. Decorating a method binds ``self``
    (Pyro's handler does not).
    """

    def __init__(self, msngr: TraceMessenger, fn: Callable[_P, _T]) -> None:
        self.fn = fn
        self.msngr = msngr
        self._last_trace: Trace | None = None

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return self._run(args, kwargs)[0]

    def _run(self, args: Any, kwargs: Any) -> tuple[_T, Trace]:
        # Each call records into a messenger no other call uses meanwhile (the shared one when
        # it is free, else a copy), so one handler may run in many threads and tasks at once.
        # Nothing here writes to the shared messenger: another call may be recording in it.
        msngr, taken = self.msngr._take_for_call()
        stack, dims, grad = _STACK.get(), _PLATE_DIMS.get(), torch.is_grad_enabled()
        try:
            with msngr:
                msngr.trace.add_node("_INPUT", name="_INPUT", type="args", args=args, kwargs=kwargs)
                try:
                    result = self.fn(*args, **kwargs)
                except (ValueError, RuntimeError) as e:
                    shapes = msngr.trace.format_shapes()
                    try:
                        augmented = type(e)(f"{e}\n{shapes}")
                    except Exception:  # an exception type with another constructor: keep it
                        raise e from None
                    raise augmented.with_traceback(e.__traceback__) from e
                msngr.trace.add_node("_RETURN", name="_RETURN", type="return", value=result)
        finally:
            # Leaves the stack, plate dims and grad mode as found, even after an interrupt cut
            # an ``__exit__`` short (see ``runtime.restores_handler_state``).
            try:
                _STACK.set(stack)
            finally:
                try:
                    torch._C._set_grad_enabled(grad)
                finally:
                    _PLATE_DIMS.set(dims if stack else ())
                    recorded = self._last_trace = msngr.trace  # read before the messenger is handed back
                    if taken:
                        msngr._idle.append(True)
        return result, recorded

    @property
    def trace(self) -> Trace:
        """The trace of the last call to finish (per call: use :meth:`get_trace`)."""
        return self.msngr.trace if self._last_trace is None else self._last_trace

    def get_trace(self, *args: _P.args, **kwargs: _P.kwargs) -> Trace:
        """Run the function and return a copy of its trace (this call's, whatever other threads do)."""
        return self._run(args, kwargs)[1].copy()

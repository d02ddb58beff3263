"""``torch.jit.trace`` for Pyro-style functions that read parameters from the param store.

A traced graph sees only its tensor inputs, so :class:`CompiledFunction` passes every
parameter's unconstrained leaf in as an input and, inside the graph, replays the function with
those parameters. One graph is compiled per number of positional arguments and set of
(hashable) keyword arguments.

Unlike the rest of :mod:`ember.ops`, this module runs whole programs, so it imports the
param store and handlers; the import contract lists that exception.
"""

from __future__ import annotations

import argparse
import time
import warnings
import weakref
from typing import Any, Callable, Hashable, overload

import torch
from torch.jit._trace import TracerWarning

from ember.distributions.util import validation_enabled
from ember.poutine.handlers import block, replay
from ember.poutine.handlers import trace as trace_handler
from ember.primitives import param

__all__ = ["CompiledFunction", "trace"]


def _hash(value: Any, allow_id: bool) -> Hashable:
    try:
        hash(value)
        return value  # type: ignore[no-any-return]  # hashable, as just checked
    except TypeError:
        if isinstance(value, list):
            return tuple(_hash(x, allow_id) for x in value)
        if isinstance(value, dict):
            return tuple(sorted(((_hash(k, allow_id), _hash(v, allow_id)) for k, v in value.items()), key=repr))
        if isinstance(value, set):
            return frozenset(_hash(x, allow_id) for x in value)
        if isinstance(value, argparse.Namespace):
            return str(value)
        if allow_id:
            return id(value)
        raise


def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    items = sorted(kwargs.items())
    try:
        hashed = tuple((name, _hash(value, False)) for name, value in items)
        hash(hashed)
    except TypeError:
        warnings.warn("Failed to hash kwargs; attempting to hash by id.")
        hashed = tuple((name, _hash(value, True)) for name, value in items)
    return len(args), hashed


def _leaf(name: str) -> torch.Tensor:
    unconstrained: Callable[[], torch.Tensor] = getattr(param(name), "unconstrained")
    return unconstrained()


class CompiledFunction:
    """The result of :func:`trace`: compiles ``fn`` on first call, then runs the graph.

    The compiled graphs are in :attr:`compiled` (keyed by argument structure); call torch's
    diagnostics on them. All parameters must be created on the first call.

    :param fn: the function to compile.
    :param ignore_warnings: silence ``torch.jit`` tracer warnings while compiling.
    :param jit_options: options for :func:`torch.jit.trace` (``check_trace`` defaults to off;
        ``time_compilation=True`` stores the seconds spent in :attr:`compile_time`).
    """

    def __init__(self, fn: Callable[..., Any], ignore_warnings: bool = False, jit_options: dict[str, Any] | None = None) -> None:
        self.fn = fn
        self.compiled: dict[Hashable, Any] = {}
        self.ignore_warnings = ignore_warnings
        self.jit_options: dict[str, Any] = {} if jit_options is None else dict(jit_options)
        self.jit_options.setdefault("check_trace", False)
        self.compile_time: float | None = None
        self._param_names: list[str] = []

    def _compile(self, key: Hashable, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with block():
            with trace_handler(param_only=True) as capture:
                self.fn(*args, **kwargs)
        self._param_names = list(dict.fromkeys(capture.trace.nodes))
        leaves = tuple(_leaf(name) for name in self._param_names)
        weak_self = weakref.ref(self)

        def compiled(*params_and_args: Any) -> Any:
            owner = weak_self()
            assert owner is not None
            count = len(owner._param_names)
            constrained = {name: param(name) for name in owner._param_names}
            return replay(owner.fn, params=constrained)(*params_and_args[count:], **kwargs)

        options = dict(self.jit_options)
        time_compilation = options.pop("time_compilation", False)
        start = time.perf_counter()
        with validation_enabled(False), warnings.catch_warnings():
            # torch deprecates jit.trace in favour of torch.compile; this API is Pyro's, so say nothing.
            warnings.filterwarnings("ignore", message=".*torch.jit.trace. is deprecated", category=DeprecationWarning)
            if self.ignore_warnings:
                warnings.filterwarnings("ignore", category=TracerWarning)
            self.compiled[key] = torch.jit.trace(compiled, leaves + args, **options)  # type: ignore[no-untyped-call]  # torch.jit.trace is unannotated
        if time_compilation:
            self.compile_time = time.perf_counter() - start

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the compiled graph for these arguments (compiling it first if needed)."""
        key = _key(args, kwargs)
        if key not in self.compiled:
            self._compile(key, args, kwargs)
        leaves = [_leaf(name) for name in self._param_names]
        with block(hide=self._param_names):
            with trace_handler(param_only=True) as capture:
                result = self.compiled[key](*leaves, *args)
        for name in capture.trace.nodes:
            if name not in self._param_names:
                raise NotImplementedError(
                    "pyro.ops.jit.trace assumes all params are created on first invocation, "
                    f"but found new param: {name}"
                )
        return result


@overload
def trace(
    fn: Callable[..., Any], ignore_warnings: bool = False, jit_options: dict[str, Any] | None = None
) -> CompiledFunction: ...
@overload
def trace(
    fn: None = None, ignore_warnings: bool = False, jit_options: dict[str, Any] | None = None
) -> Callable[[Callable[..., Any]], CompiledFunction]: ...
def trace(
    fn: Callable[..., Any] | None = None, ignore_warnings: bool = False, jit_options: dict[str, Any] | None = None
) -> CompiledFunction | Callable[[Callable[..., Any]], CompiledFunction]:
    """Compile ``fn`` lazily with ``torch.jit.trace``, passing its parameters as graph inputs.

    Use as ``trace(fn)``, ``@trace`` or ``@trace(ignore_warnings=True)``.

    :param fn: the function to compile.
    :param ignore_warnings: silence tracer warnings while compiling.
    :param jit_options: options for :func:`torch.jit.trace`.
    :returns: a :class:`CompiledFunction` (or a decorator making one).
    """
    if fn is None:
        return lambda f: trace(f, ignore_warnings=ignore_warnings, jit_options=jit_options)
    return CompiledFunction(fn, ignore_warnings=ignore_warnings, jit_options=jit_options)

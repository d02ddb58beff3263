"""A function of tensors captured once as a graph of aten ops, and that graph compiled.

:func:`trace_graph` runs a function under :func:`torch.fx.experimental.proxy_tensor.make_fx`
with no lasting effect (RNG state, param store, validation), keeping the random ops where the
function called them, so replaying the graph draws from torch's global generator in the
eager order. :func:`compile_graph` hands the graph to inductor (or another backend).
:func:`capture_failure` says why a capture failed. Used by the compiled SVI step
(:mod:`ember.infer._capture`) and the compiled predictive (:mod:`ember.infer._predictive_capture`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any
from unittest import mock

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from ember.poutine.handlers import block
from ember.primitives import get_param_store, validation_enabled

__all__ = ["capture_failure", "compile_graph", "flatten", "trace_graph", "unflatten"]

_DATA_DEPENDENT = ("_local_scalar_dense", "data-dependent", "DataDependent")


def flatten(value: Any, tensors: list[torch.Tensor]) -> Hashable:
    """The hashable skeleton of ``value``; its tensors are appended to ``tensors`` in order."""
    if isinstance(value, torch.Tensor):
        tensors.append(value)
        return ("tensor", tuple(value.shape), value.stride(), value.dtype, value.device, value.requires_grad)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(flatten(x, tensors) for x in value))
    if isinstance(value, dict):
        return (dict, tuple((k, flatten(v, tensors)) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    hashable: Hashable = value
    return hashable


def unflatten(value: Any, tensors: Sequence[torch.Tensor], position: list[int]) -> Any:
    """``value`` with its tensors replaced by ``tensors``, read from ``position[0]`` on."""
    if isinstance(value, torch.Tensor):
        out = tensors[position[0]]
        position[0] += 1
        return out
    if isinstance(value, (tuple, list)):
        items = [unflatten(x, tensors, position) for x in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: unflatten(value[k], tensors, position) for k in sorted(value, key=str)}
    return value


def _no_check(self: Any, value: torch.Tensor) -> None:
    """A support check that checks nothing (see :func:`trace_graph`)."""


class _FrozenParams(RuntimeError):
    """The captured graph would hold params as constants."""


def capture_failure(error: Exception) -> str:
    """Why a capture failed, for the warning that says the structure runs eagerly."""
    message = str(error).split("\n", 1)[0]
    if any(marker in str(error) for marker in _DATA_DEPENDENT):
        return (
            "the model or guide reads a tensor's value as a Python number (data-dependent control "
            "flow such as `if x.sum() > 0:`, or `.item()`), so its structure may change with the values"
        )
    if isinstance(error, _FrozenParams):
        return message
    return f"capturing it failed ({type(error).__name__}: {message})"


def trace_graph(fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> torch.fx.GraphModule:
    """``fn`` run once under ``make_fx`` on ``inputs``: its graph of aten ops, random ops in place.

    The run leaves no trace: torch's RNG state, the param store and the handlers outside are
    as before (it runs inside ``block``), validation is off, and support checks of
    distributions built before are skipped (they would read a tensor's value).

    :raises _FrozenParams: if the graph would hold a tensor that requires grad as a constant.
    """
    store = get_param_store()
    devices = sorted({x.device.index or 0 for x in inputs if x.device.type == "cuda"})
    saved = store.get_state()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=devices))
            stack.enter_context(block())
            stack.enter_context(validation_enabled(False))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            # Distributions built before the capture (a PyroSample prior) keep the validation
            # flag they were built with; their support check would read a tensor's value.
            stack.enter_context(mock.patch.object(torch.distributions.Distribution, "_validate_sample", _no_check))
            graph: torch.fx.GraphModule = make_fx(fn)(*inputs)
    finally:
        store.set_state(saved)
    frozen = [name for name, value in graph.named_buffers() if value.requires_grad]
    frozen += [name for name, value in graph.named_parameters() if value.requires_grad]
    frozen += [name for name, value in vars(graph).items() if isinstance(value, torch.Tensor) and value.requires_grad]
    if frozen:
        # e.g. an nn.Module's own parameters behind `ember.module`: the graph would hold
        # them as constants, with no gradient, so this structure runs eagerly.
        raise _FrozenParams(
            f"the model or guide reads {len(frozen)} tensor(s) that require grad but are not read through "
            "`ember.param` (such as the parameters of a torch.nn.Module registered with `ember.module`; "
            "a PyroModule reads its params through `ember.param`)"
        )
    return graph


def compile_graph(
    graph: torch.fx.GraphModule,
    inputs: Sequence[torch.Tensor],
    backend: str | Callable[..., Any] | None,
    options: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """``graph`` compiled for ``inputs``-like arguments (their shapes, strides, dtypes, devices).

    :param graph: a captured graph of aten ops (from ``make_fx``).
    :param inputs: example inputs, used to compile now.
    :param backend: ``None`` returns the graph as it is; ``"inductor"`` hands the graph to
        inductor directly (no dynamo frame or guards around it: the callers guard the key,
        and this saves ~25 us a call), falling back to :func:`torch.compile` if that fails;
        any other backend goes through :func:`torch.compile`.
    :param options: inductor options (``fallback_random`` is always on: inductor's own RNG would
        draw other numbers than eager code with the same seed).
    """
    if backend is None:
        return graph
    if backend == "inductor":
        options = {"fallback_random": True, **(options or {})}
        try:
            from torch._inductor import config as inductor_config
            from torch._inductor.compile_fx import compile_fx

            with inductor_config.patch(options):
                direct = compile_fx(graph, list(inputs))
            if callable(direct):
                return direct
        except Exception:  # a private API: if it moved or refuses the graph, torch.compile is the public path
            pass
    compiled: Callable[..., Any] = torch.compile(graph, backend=backend, options=options, dynamic=False, fullgraph=True)
    return compiled

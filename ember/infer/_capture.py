"""Capture of one SVI loss-and-gradient step as a graph of the params, the inputs and the draws.

:class:`CapturedStep` holds, per structure key, a function of the unconstrained params and of
the step's tensor arguments that returns the loss and the gradient of the surrogate loss with
respect to every param. It is built by running the eager loss under
:func:`torch.fx.experimental.proxy_tensor.make_fx` once, with the params replayed from the
graph's inputs: the handlers, traces and per-site Python run at capture time only, and the
graph keeps the random ops (``aten.normal``, ``aten.randperm``, ...) where eager code called
them, so replaying it draws from torch's global generator in the eager order. The graph is then
handed to :func:`torch.compile` (inductor keeps torch's random ops, ``fallback_random``), or
run as it is for ``backend=None``.

The structure key (:func:`structure_key`) is what a static model's structure may depend on and
is cheap to read every step: the model and guide, each argument's shape, dtype and device (the
value of non-tensor arguments), the number of params in the store, the shape and constraint of
each param the graph reads, and the validation flags. A step run inside handlers other than
``SVI.step``'s param-only trace runs eagerly (one warning). A new key runs the step eagerly and captures a new graph
(one warning says what changed); a capture that reads a tensor's value as a Python number
(data-dependent control flow, ``.item()``) fails, and that key then always runs eagerly, with
one warning saying so.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from torch.distributions import transform_to

from ember.infer._graph import capture_failure, compile_graph, flatten, trace_graph, unflatten
from ember.infer.util import is_validation_enabled
from ember.poutine import TraceMessenger
from ember.poutine.handlers import replay, trace
from ember.poutine.runtime import get_stack
from ember.primitives import get_param_store, param
from ember._util import warn_at_caller

__all__ = ["CapturedStep", "structure_key"]

Model = Callable[..., Any]
LossFn = Callable[[Model, Model, Sequence[Any], Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor]]
EagerFn = Callable[[Model, Model, Sequence[Any], Mapping[str, Any]], float]

def structure_key(model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Hashable, list[torch.Tensor]]:
    """The step's structure key and its tensor inputs (args then kwargs, depth first).

    :param model: the model.
    :param guide: the guide.
    :param args: the step's positional arguments.
    :param kwargs: the step's keyword arguments.

    >>> key, tensors = structure_key(print, print, (torch.zeros(2, 3), 5), {"flag": True})
    >>> [tuple(t.shape) for t in tensors], key == structure_key(print, print, (torch.ones(2, 3), 5), {"flag": True})[0]
    ([(2, 3)], True)
    """
    tensors: list[torch.Tensor] = []
    skeleton = flatten((tuple(args), dict(kwargs)), tensors)
    key = (id(model), id(guide), skeleton, len(get_param_store()), is_validation_enabled())
    return key, tensors


def _describe_change(old: Hashable, new: Hashable) -> str:
    """A short phrase naming the part of the structure key that differs."""
    if not (isinstance(old, tuple) and isinstance(new, tuple)) or len(old) != len(new):
        return "the structure"
    labels = ("the model", "the guide", "the arguments' shapes, dtypes or values", "the set of params", "validation")
    changed = [label for label, a, b in zip(labels, old, new) if a != b]
    return " and ".join(changed) if changed else "the structure"


def _only_param_traces() -> bool:
    """Whether every active handler is a param-only trace (``SVI.step``'s own), which a replay honours."""
    return all(isinstance(frame, TraceMessenger) and frame.param_only for frame in get_stack())


class _Entry:
    """One captured step: the params it reads (names, shapes) and the compiled function."""

    __slots__ = ("names", "shapes", "constraints", "fn", "eager", "compile_seconds", "calls", "leaves", "grads")

    def __init__(self, names: list[str], shapes: list[torch.Size], fn: Callable[..., Any] | None) -> None:
        self.names = names
        self.shapes = shapes
        store = get_param_store()
        self.constraints = [store._constraints.get(name) for name in names] if fn is not None else []
        self.fn = fn
        self.eager = fn is None
        self.compile_seconds = 0.0
        self.calls = 0
        #: the store's leaves when last checked, and the gradients the last step left on them.
        self.leaves: list[torch.Tensor] | None = None
        self.grads: list[torch.Tensor] = []

    def current_leaves(self) -> list[torch.Tensor] | None:
        """The params' leaves, read from the store; ``None`` if one was replaced or changed shape or constraint.

        Two identity checks a param when the store still holds the leaves seen last time.
        """
        store = get_param_store()
        params, constraints = store._params, store._constraints  # noqa: SLF001  # read only, the hot path
        leaves = self.leaves
        if leaves is not None and all(params.get(n) is leaf for n, leaf in zip(self.names, leaves)) and all(
            constraints.get(n) is c for n, c in zip(self.names, self.constraints)
        ):
            return leaves
        found = [params.get(name) for name in self.names]
        if any(leaf is None for leaf in found):
            return None
        leaves = [leaf for leaf in found if leaf is not None]
        if any(leaf.shape != shape for leaf, shape in zip(leaves, self.shapes)) or any(
            constraints.get(n) is not c for n, c in zip(self.names, self.constraints)
        ):
            return None
        self.leaves, self.grads = leaves, []
        return leaves

    def accumulate(self, leaves: list[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
        """Add ``grads`` to the leaves' ``.grad``, taking them over where the last step left zeros."""
        own = self.grads
        for i, (leaf, grad) in enumerate(zip(leaves, grads)):
            current = leaf.grad
            if current is None or (i < len(own) and current is own[i]):
                leaf.grad = grad  # the zeros this step left: adding to them changes nothing
            else:
                current.add_(grad)


class CapturedStep:
    """Loss-and-gradient steps replayed from captured, compiled graphs; eager where that is unsafe.

    :param owner: the name used in warnings (the ELBO's class name).
    :param loss_fn: ``(model, guide, args, kwargs) -> (loss, surrogate_loss)`` as tensors:
        what the graph computes.
    :param eager_fn: the eager ``loss_and_grads``: run on the first step of each key (its loss,
        draws and gradients are exactly eager ones) and for keys that cannot be captured.
    :param backend: the :func:`torch.compile` backend, or ``None`` to run the captured graph
        without compiling it.
    :param compile_options: ``options`` for :func:`torch.compile` (inductor only).
    :param max_graphs: how many structure keys get a graph; later new keys run eagerly.
    """

    def __init__(
        self,
        owner: str,
        loss_fn: LossFn,
        eager_fn: EagerFn,
        backend: str | Callable[..., Any] | None,
        compile_options: dict[str, Any] | None = None,
        max_graphs: int = 8,
    ) -> None:
        self.owner = owner
        self.loss_fn = loss_fn
        self.eager_fn = eager_fn
        self.backend = backend
        self.compile_options = compile_options
        self.max_graphs = max_graphs
        self.entries: dict[Hashable, _Entry] = {}
        self._last_key: Hashable | None = None
        self._warned_change = False
        self._warned_handlers = False
        #: seconds spent capturing and compiling (compiling happens on a graph's first call).
        self.compile_seconds = 0.0

    def __call__(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> float:
        """The loss of one step; the gradients are accumulated into the params' ``.grad``."""
        key, tensors = structure_key(model, guide, args, kwargs)
        entry = self.entries.get(key)
        if not _only_param_traces():
            # Handlers around the step (a scale, a condition, a trace of the samples) must see
            # and change the sites, which only the eager step runs.
            if not self._warned_handlers:
                self._warned_handlers = True
                warn_at_caller(
                    f"{self.owner}: the step runs inside handlers other than SVI's own, so it runs eagerly",
                    UserWarning,
                )
            return self.eager_fn(model, guide, args, kwargs)
        if entry is not None and not entry.eager:
            leaves = [getattr(param(name), "unconstrained")() for name in entry.names]
            constraints = get_param_store()._constraints  # noqa: SLF001  # the store's own map, read only
            if all(leaf.shape == shape for leaf, shape in zip(leaves, entry.shapes)) and all(
                constraints.get(name) is c for name, c in zip(entry.names, entry.constraints)
            ):
                self._last_key = key
                return self._run(entry, leaves, tensors)
            entry = None  # a param was replaced by one of another shape or constraint: capture again
        if entry is not None:
            return self.eager_fn(model, guide, args, kwargs)
        return self._first_step(key, model, guide, args, kwargs, tensors)

    def svi_step(
        self,
        model: Model,
        guide: Model,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        optimize: Callable[[list[torch.Tensor]], None],
        reject: Callable[[float, list[torch.Tensor]], bool] | None,
    ) -> float | None:
        """A whole ``SVI.step`` from the graph, or ``None`` where ``SVI.step``'s own path must run.

        :param optimize: steps the params (their gradients set).
        :param reject: whether a step's loss or gradients forbid the update (``SVI``'s
            non-finite check), or ``None``.

        Runs only with no handler active and a graph for the step's key whose params are
        the store's, then does what ``SVI.step`` does around ``loss_and_grads`` without its
        param-only trace: the params are the graph's, in the order of their first use.
        """
        if get_stack():
            return None
        key, tensors = structure_key(model, guide, args, kwargs)
        entry = self.entries.get(key)
        if entry is None or entry.fn is None:
            return None
        leaves = entry.current_leaves()
        if leaves is None:
            return None
        self._last_key = key
        value, grads = self._call(entry, leaves, tensors)
        if reject is None or not reject(value, leaves):
            optimize(leaves)
        # SVI.step leaves zero gradients: the graph's outputs are this step's own, zeroed in place.
        own = [grad for grad in (leaf.grad for leaf in leaves) if grad is not None]
        if own:
            torch._foreach_zero_(own)
        entry.grads = own if len(own) == len(leaves) else []
        return value

    def _call(self, entry: _Entry, leaves: list[torch.Tensor], tensors: list[torch.Tensor]) -> tuple[float, Sequence[torch.Tensor]]:
        """The loss of the graph's step; its gradients are accumulated into the leaves."""
        assert entry.fn is not None
        start = time.perf_counter() if entry.calls == 0 else 0.0
        outputs = entry.fn(*[leaf.detach() for leaf in leaves], *tensors)
        if entry.calls == 0:
            entry.compile_seconds += time.perf_counter() - start
            self.compile_seconds += time.perf_counter() - start
        entry.calls += 1
        grads = outputs[1:]
        entry.accumulate(leaves, grads)
        value: float = outputs[0].item()
        return value, grads

    def _run(self, entry: _Entry, leaves: list[torch.Tensor], tensors: list[torch.Tensor]) -> float:
        entry.grads = []  # the caller zeroes the gradients its own way
        return self._call(entry, leaves, tensors)[0]

    def _first_step(
        self,
        key: Hashable,
        model: Model,
        guide: Model,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        tensors: list[torch.Tensor],
    ) -> float:
        if self._last_key is not None and not self._warned_change:
            self._warned_change = True
            warn_at_caller(
                f"{self.owner}: {_describe_change(self._last_key, key)} changed since the last step; "
                "this step runs eagerly and a new graph is captured for the new structure",
                UserWarning,
            )
        with trace(param_only=True) as capture:
            value = self.eager_fn(model, guide, args, kwargs)
        names = list(capture.trace.nodes)
        # The first step creates the params, so the key of the next steps is read after it.
        key, tensors = structure_key(model, guide, args, kwargs)
        self._last_key = key
        if len(self.entries) >= self.max_graphs:
            warn_at_caller(
                f"{self.owner}: {len(self.entries)} graphs captured already (max_graphs); new structures run eagerly",
                UserWarning,
            )
            self.entries[key] = _Entry(names, [], None)
            return value
        start = time.perf_counter()
        try:
            graph = self._capture(names, model, guide, args, kwargs, tensors)
        except Exception as error:  # any failure to capture means: run this structure eagerly
            self.entries[key] = _Entry(names, [], None)
            reason = capture_failure(error)
            warn_at_caller(f"{self.owner}: {reason}; the step runs eagerly, as Trace_ELBO", UserWarning)
            return value
        shapes = [get_param_store()[name].shape for name in names]
        leaves = [getattr(param_value, "unconstrained")() for param_value in map(get_param_store().__getitem__, names)]
        self.entries[key] = _Entry(names, shapes, self._compile(graph, [leaf.detach() for leaf in leaves] + tensors))
        self.compile_seconds += time.perf_counter() - start
        return value

    def _capture(
        self,
        names: list[str],
        model: Model,
        guide: Model,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        tensors: list[torch.Tensor],
    ) -> torch.fx.GraphModule:
        store = get_param_store()
        constraints = [store._constraints[name] for name in names]  # noqa: SLF001  # the leaves' constraints
        count = len(names)
        skeleton = (tuple(args), dict(kwargs))
        loss_fn = self.loss_fn

        def step(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            leaves = list(inputs[:count])
            args_, kwargs_ = unflatten(skeleton, inputs[count:], [0])
            params = {}
            for name, c, leaf in zip(names, constraints, leaves):
                value = transform_to(c)(leaf)
                setattr(value, "unconstrained", weakref.ref(leaf))
                params[name] = value
            with replay(params=params):
                loss, surrogate = loss_fn(model, guide, args_, kwargs_)
            grads: Sequence[torch.Tensor | None] = [None] * count
            if surrogate.requires_grad and leaves:
                grads = torch.autograd.grad(surrogate, leaves, allow_unused=True)
            zeros = [torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads)]
            return (loss.detach(), *(g.detach() for g in zeros))

        # The leaves themselves, not copies: make_fx maps these very tensors to the graph's inputs,
        # so a module that holds its param (PyroModule, `ember.module`) reads the input too.
        leaves = [getattr(store[name], "unconstrained")() for name in names]
        return trace_graph(step, [*leaves, *tensors])

    def _compile(self, graph: torch.fx.GraphModule, inputs: Sequence[torch.Tensor]) -> Callable[..., Any]:
        return compile_graph(graph, inputs, self.backend, self.compile_options)

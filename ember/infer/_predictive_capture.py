"""Repeated ``Predictive(parallel=True)`` calls replayed from one captured graph per structure.

:class:`CapturedPredictive` holds, per structure key, a graph of the whole predictive call
(the shape-finding runs and the vectorized, conditioned runs of guide and model) as a function
of the param store's unconstrained leaves, the call's tensor arguments and the posterior
samples. It is captured with :func:`~ember.infer._graph.trace_graph` exactly as the compiled
SVI step is, so the graph keeps the random ops in the order eager code calls them: a seed gives
the samples of the eager call.

The key is what the call's structure may depend on: the predictive's settings (model, guide,
number of samples, returned sites), the shapes, strides, dtypes and devices of the tensor
arguments and posterior samples (the values of the others), every param's name, shape, dtype
and constraint, and the validation flag. The first call with a key runs eagerly (with
validation checks, if on) and then captures its graph; a capture that fails (a value read as a
Python number, a non-tensor ``_RETURN``, a tensor that requires grad outside the param store)
leaves that key eager, with one warning saying why. A call inside other handlers runs eagerly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch

from ember._util import warn_at_caller
from ember.infer._graph import capture_failure, compile_graph, flatten, trace_graph, unflatten
from ember.infer.util import is_validation_enabled
from ember.poutine.runtime import get_stack
from ember.primitives import get_param_store

__all__ = ["CapturedPredictive"]

#: ``(args, kwargs, posterior_samples) -> samples by site``: the eager predictive call.
Run = Callable[[Sequence[Any], Mapping[str, Any], Mapping[str, torch.Tensor]], dict[str, Any]]


class _Graph:
    """One captured call: the param names it takes, the site names it returns, its function."""

    __slots__ = ("params", "sites", "fn", "calls")

    def __init__(self, params: list[str], sites: list[str], fn: Callable[..., Any]) -> None:
        self.params = params
        self.sites = sites
        self.fn = fn
        self.calls = 0


class _NotTensors(TypeError):
    """A returned site is not a tensor (a model's non-tensor ``_RETURN``)."""


class CapturedPredictive:
    """Predictive calls replayed from captured, compiled graphs; eager where that is unsafe.

    :param run: the eager call (see :data:`Run`).
    :param backend: the :func:`torch.compile` backend, or ``None`` to replay the captured graph
        as it is (see :func:`~ember.infer._graph.compile_graph`).
    :param compile_options: inductor options.
    :param max_graphs: how many structure keys get a graph; later new keys run eagerly.
    """

    def __init__(
        self,
        run: Run,
        backend: str | Callable[..., Any] | None,
        compile_options: dict[str, Any] | None = None,
        max_graphs: int = 8,
    ) -> None:
        self.run = run
        self.backend = backend
        self.compile_options = compile_options
        self.max_graphs = max_graphs
        self.graphs: dict[Hashable, _Graph | None] = {}
        self.compile_seconds = 0.0
        self._warned: set[str] = set()

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warn_at_caller(f"Predictive(compile=True): {message}", UserWarning)

    def __call__(
        self, settings: Hashable, args: Sequence[Any], kwargs: Mapping[str, Any], samples: Mapping[str, torch.Tensor]
    ) -> dict[str, Any]:
        """The predictive samples of one call, from the graph of its key where there is one."""
        if get_stack():
            # Handlers around the call must see its sites, which only the eager call runs.
            self._warn("handlers", "the call runs inside handlers, so it runs eagerly")
            return self.run(args, kwargs, samples)
        key, names, leaves, tensors = self._key(settings, args, kwargs, samples)
        if key not in self.graphs:
            result = self.run(args, kwargs, samples)
            # The eager call may have created params: the key of later calls is read after it.
            key, names, leaves, tensors = self._key(settings, args, kwargs, samples)
            self._capture(key, names, leaves, tensors, (tuple(args), dict(kwargs), dict(samples)), sorted(result))
            return result
        graph = self.graphs[key]
        if graph is None:
            return self.run(args, kwargs, samples)
        outputs = graph.fn(*[leaf.detach() for leaf in leaves], *tensors)
        graph.calls += 1
        return dict(zip(graph.sites, outputs))

    def _key(
        self, settings: Hashable, args: Sequence[Any], kwargs: Mapping[str, Any], samples: Mapping[str, torch.Tensor]
    ) -> tuple[Hashable, list[str], list[torch.Tensor], list[torch.Tensor]]:
        store = get_param_store()
        names = sorted(store._params)  # noqa: SLF001  # the store's own leaves, read only
        leaves = [store._params[name] for name in names]  # noqa: SLF001  # as above
        params = tuple(
            (name, tuple(leaf.shape), leaf.stride(), leaf.dtype, leaf.device, id(store._constraints.get(name)))  # noqa: SLF001
            for name, leaf in zip(names, leaves)
        )
        tensors: list[torch.Tensor] = []
        skeleton = flatten((tuple(args), dict(kwargs), dict(samples)), tensors)
        return (settings, skeleton, params, is_validation_enabled()), names, leaves, tensors

    def _capture(
        self,
        key: Hashable,
        names: list[str],
        leaves: list[torch.Tensor],
        tensors: list[torch.Tensor],
        skeleton: tuple[Any, ...],
        sites: list[str],
    ) -> None:
        if len(self.graphs) >= self.max_graphs:
            self._warn("max", f"{len(self.graphs)} graphs captured already (max_graphs); new structures run eagerly")
            self.graphs[key] = None
            return
        count = len(leaves)
        run = self.run

        def call(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            args, kwargs, samples = unflatten(skeleton, inputs[count:], [0])
            result = run(args, kwargs, samples)
            if sorted(result) != sites or not all(isinstance(result[site], torch.Tensor) for site in sites):
                raise _NotTensors("a returned site is not a tensor (such as a model's non-tensor return value)")
            return tuple(result[site] for site in sites)

        start = time.perf_counter()
        try:
            # The store's leaves themselves: whatever reads a param (the store, a PyroModule,
            # `ember.module`) reads the graph's input.
            graph = trace_graph(call, [*leaves, *tensors])
            fn = compile_graph(graph, [*(leaf.detach() for leaf in leaves), *tensors], self.backend, self.compile_options)
        except Exception as error:  # any failure to capture means: run this structure eagerly
            self.graphs[key] = None
            self._warn("capture", f"{capture_failure(error)}; this structure runs eagerly")
            return
        self.graphs[key] = _Graph(names, sites, fn)
        self.compile_seconds += time.perf_counter() - start

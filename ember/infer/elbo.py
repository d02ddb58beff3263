"""The :class:`ELBO` base class, its :class:`ELBOModule`, and the compiler the Jit ELBOs share.

An ELBO runs the guide, replays the model against it (:func:`~ember.infer.enum.get_importance_trace`)
and turns the pair of traces into a loss. This module holds what every ELBO shares: the
options, particle loops (sequential or vectorized under a ``num_particles_vectorized``
plate), the guess of ``max_plate_nesting``, and :class:`_JitCompiled`, which turns a loss
function into a ``torch.jit.trace`` graph whose inputs are the unconstrained params, with
:class:`_JitELBO`, the losses every Jit ELBO reads from that graph.
"""

from __future__ import annotations

import argparse
import logging
import numbers
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.jit._fuser import optimized_execution
from torch.jit._trace import TracerWarning

from ember.infer.util import check_site_shape, is_validation_enabled, torch_backward
from ember.poutine.handlers import block, replay, trace
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember.primitives import get_param_store, param, plate, validation_enabled
from ember._util import warn_at_caller, warn_if_nan

__all__ = ["ELBO", "ELBOModule"]

logger = logging.getLogger(__name__)

Model = Callable[..., Any]
TracePair = tuple[Trace, Trace]


class ELBOModule(torch.nn.Module):
    """A model, a guide and an ELBO as a :class:`torch.nn.Module` whose forward is the loss.

    :param model: the model.
    :param guide: the guide.
    :param elbo: the ELBO computing the loss.
    """

    def __init__(self, model: Model, guide: Model, elbo: ELBO) -> None:
        super().__init__()
        self.model = model
        self.guide = guide
        self.elbo = elbo

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.elbo.differentiable_loss(self.model, self.guide, *args, **kwargs)


def _is_positive_integer(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and int(value) >= 1


class ELBO(ABC):
    """Base class of the evidence lower bound estimators used by stochastic variational inference.

    Subclasses implement :meth:`_get_trace` (one model/guide trace pair) and the losses:
    ``loss`` (a float), ``differentiable_loss`` (a tensor to call ``backward`` on) and
    ``loss_and_grads`` (a float, with gradients accumulated in the params).

    :param num_particles: samples per estimate.
    :param max_plate_nesting: a bound on the number of nested plates; guessed by running
        model and guide once when it is needed and left infinite.
    :param max_iarange_nesting: deprecated alias of ``max_plate_nesting``.
    :param vectorize_particles: draw all particles at once, in an outermost plate named
        ``"num_particles_vectorized"`` (needs static model structure).
    :param strict_enumeration_warning: warn about enumerated sites an ELBO cannot use.
    :param ignore_jit_warnings: silence ``torch.jit`` tracer warnings in the Jit ELBOs.
    :param jit_options: options for :func:`torch.jit.trace` (``check_trace`` defaults to off).
    :param retain_graph: keep the autograd graph after ``backward``.
    :param tail_adaptive_beta: the exponent of ``TraceTailAdaptive_ELBO``, in ``[-1, 0)``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.infer import Trace_ELBO
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> elbo = Trace_ELBO(num_particles=3)
    >>> elbo.num_particles, elbo.max_plate_nesting, elbo.vectorize_particles
    (3, inf, False)
    >>> abs(elbo.loss(model, guide))  # q = p, so every particle's ELBO is 0
    0.0
    """

    def __init__(
        self,
        num_particles: int = 1,
        max_plate_nesting: float = float("inf"),
        max_iarange_nesting: float | None = None,
        vectorize_particles: bool = False,
        strict_enumeration_warning: bool = True,
        ignore_jit_warnings: bool = False,
        jit_options: dict[str, Any] | None = None,
        retain_graph: bool | None = None,
        tail_adaptive_beta: float = -1.0,
    ) -> None:
        if max_iarange_nesting is not None:
            warn_at_caller("max_iarange_nesting is deprecated; use max_plate_nesting instead", DeprecationWarning)
            max_plate_nesting = max_iarange_nesting
        self.max_plate_nesting = max_plate_nesting
        if not _is_positive_integer(num_particles):
            # Beyond Pyro, which accepts 0 and then returns a loss of 0.0 with no gradient.
            raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
        self.num_particles = num_particles
        self.vectorize_particles = vectorize_particles
        self.retain_graph = retain_graph
        if self.vectorize_particles and self.num_particles > 1:
            self.max_plate_nesting += 1
        self.strict_enumeration_warning = strict_enumeration_warning
        self.ignore_jit_warnings = ignore_jit_warnings
        self.jit_options = jit_options
        self.tail_adaptive_beta = tail_adaptive_beta

    def __call__(self, model: Model, guide: Model) -> ELBOModule:
        """The pair as a :class:`torch.nn.Module` whose forward returns :meth:`differentiable_loss`."""
        return ELBOModule(model, guide, self)

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """An estimate of the negative ELBO."""
        raise NotImplementedError

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The negative ELBO as a tensor whose gradient is the estimator's gradient."""
        raise NotImplementedError

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The negative ELBO; also accumulates its gradient estimate into the params."""
        raise NotImplementedError

    def _guess_max_plate_nesting(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Set ``max_plate_nesting`` from one run of the pair (assumes static structure)."""
        # Hidden from outer handlers; model sites missing from the guide are allowed here.
        with block():
            guide_trace = trace(guide).get_trace(*args, **kwargs)
            model_trace = trace(replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)
        sites = [site for tr in (model_trace, guide_trace) for site in tr.nodes.values() if site["type"] == "sample"]
        # Check shapes now: once max_plate_nesting is finite, dims left of it may broadcast.
        if is_validation_enabled():
            guide_trace.compute_log_prob()
            model_trace.compute_log_prob()
            for site in sites:
                check_site_shape(site, max_plate_nesting=float("inf"))
        dims = [frame.dim for site in sites for frame in site["cond_indep_stack"] if frame.dim is not None]
        self.max_plate_nesting = -min(dims) if dims else 0
        if self.vectorize_particles and self.num_particles > 1:
            self.max_plate_nesting += 1
        logger.info("Guessed max_plate_nesting = %s", self.max_plate_nesting)

    def _vectorized_num_particles(self, fn: Model) -> Model:
        """``fn`` inside an outermost plate over the particles (``fn`` itself for one particle)."""
        if self.num_particles == 1:
            return fn
        return plate("num_particles_vectorized", self.num_particles, dim=-int(self.max_plate_nesting))(fn)

    def _get_vectorized_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        return self._get_trace(self._vectorized_num_particles(model), self._vectorized_num_particles(guide), args, kwargs)

    @abstractmethod
    def _get_trace(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TracePair:
        """One ``(model_trace, guide_trace)`` pair: the guide run, and the model run against it."""
        raise NotImplementedError

    def _get_traces(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[TracePair]:
        """One trace pair per particle, or a single vectorized pair."""
        if self.vectorize_particles:
            if self.max_plate_nesting == float("inf"):
                self._guess_max_plate_nesting(model, guide, args, kwargs)
            yield self._get_vectorized_trace(model, guide, args, kwargs)
        else:
            for _ in range(self.num_particles):
                yield self._get_trace(model, guide, args, kwargs)


# ---------------------------------------------------------------------------------------------
# Compilation for the Jit ELBOs

LossFn = Callable[[Model, Model, Sequence[Any], Mapping[str, Any]], tuple[torch.Tensor, ...]]


def _hashable(value: Any, allow_id: bool) -> Hashable:
    try:
        hash(value)
    except TypeError:
        if isinstance(value, list):
            return tuple(_hashable(x, allow_id) for x in value)
        if isinstance(value, dict):
            return tuple(sorted((_hashable(k, allow_id), _hashable(v, allow_id)) for k, v in value.items()))
        if isinstance(value, set):
            return frozenset(_hashable(x, allow_id) for x in value)
        if isinstance(value, argparse.Namespace):
            return str(value)
        if allow_id:
            return id(value)
        raise
    hashable: Hashable = value
    return hashable


def _kwargs_key(kwargs: Mapping[str, Any]) -> Hashable:
    items = sorted(kwargs.items())
    try:
        key = tuple((name, _hashable(value, False)) for name, value in items)
        hash(key)
    except TypeError:
        warn_at_caller("Failed to hash kwargs; attempting to hash by id.")
        key = tuple((name, _hashable(value, True)) for name, value in items)
    return key


class _Compiled:
    """One traced graph: the param names it reads, in input order, and the graph."""

    def __init__(self, model: Model, guide: Model, names: list[str], graph: Callable[..., Any]) -> None:
        # model and guide are held so their ids, part of the cache key, stay unique.
        self.model = model
        self.guide = guide
        self.names = names
        self.graph = graph


class _JitCompiled:
    """A loss function ``fn(model, guide, args, kwargs) -> tensors`` compiled with ``torch.jit.trace``.

    One graph is traced per ``(model, guide, len(args), kwargs)``; its inputs are the
    unconstrained params followed by ``args``, so later calls read the current param values.
    The first call for a key runs ``fn`` eagerly (its result, the params it creates, and the
    random draws it makes are exactly those of the eager ELBO), then traces the graph with
    the RNG state saved and restored, so compiling draws nothing. Each later call reads its
    params with :func:`ember.param`, so handlers around the call (``SVI``'s param capture)
    still see them.

    Graphs run without the JIT's graph optimizations unless ``jit_options["optimize"]`` is
    true. The optimizer may move independent random ops (e.g. the second particle's
    subsample permutation before the first particle's draws), which keeps every estimate
    valid but no longer reproduces the eager ELBO's draws. The gain varies: 0.77 against
    1.04 ms per ``loss_and_grads`` on a two-site model with a subsampled plate, and none on a
    two-particle local-latent model (eager: 2.2 and 6.0 ms; CPU, one thread).

    :param fn: the loss function.
    :param ignore_warnings: silence tracer warnings while compiling.
    :param jit_options: keyword arguments for :func:`torch.jit.trace` (``check_trace``
        defaults to false), plus ``optimize`` (see above).
    """

    def __init__(self, fn: LossFn, ignore_warnings: bool = False, jit_options: dict[str, Any] | None = None) -> None:
        self.fn = fn
        self.ignore_warnings = ignore_warnings
        self.jit_options = {"check_trace": False, **(jit_options or {})}
        self.jit_options.pop("time_compilation", None)
        self.optimize = bool(self.jit_options.pop("optimize", False))
        self.compiled: dict[Hashable, _Compiled] = {}

    def __call__(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        key = (id(model), id(guide), len(args), _kwargs_key(kwargs))
        entry = self.compiled.get(key)
        if entry is None:
            with trace(param_only=True) as capture:
                result = self.fn(model, guide, args, kwargs)
            names = list(capture.trace.nodes)
            self.compiled[key] = self._compile(model, guide, names, args, kwargs)
            return result
        leaves = [getattr(param(name), "unconstrained")() for name in entry.names]
        with optimized_execution(self.optimize):
            outputs: tuple[torch.Tensor, ...] = entry.graph(*leaves, *args)
        return outputs

    def _compile(self, model: Model, guide: Model, names: list[str], args: Sequence[Any], kwargs: Mapping[str, Any]) -> _Compiled:
        store = get_param_store()
        fn = self.fn
        count = len(names)

        def traced(*leaves_and_args: Any) -> tuple[torch.Tensor, ...]:
            # The store's constrained views of the input leaves, so the graph starts at the leaves.
            params = {name: store[name] for name in names}
            with replay(params=params):
                outputs = fn(model, guide, leaves_and_args[count:], kwargs)
            return tuple(_tensor(x) for x in outputs)

        leaves = tuple(getattr(store[name], "unconstrained")() for name in names)
        devices = sorted({leaf.device.index or 0 for leaf in leaves if leaf.device.type == "cuda"})
        # The tracing run repeats the eager one; undo what it writes to the param store (a
        # decaying-average baseline) along with the random draws it makes.
        saved = store.get_state()
        try:
            with warnings.catch_warnings(), torch.random.fork_rng(devices=devices), block(), validation_enabled(False):
                warnings.filterwarnings("ignore", message=".*torch.jit.trace. is deprecated", category=DeprecationWarning)
                if self.ignore_warnings:
                    warnings.filterwarnings("ignore", category=TracerWarning)
                graph = torch.jit.trace(  # type: ignore[no-untyped-call]  # torch.jit.trace is unannotated
                    traced, (*leaves, *args), **self.jit_options
                )
        finally:
            store.set_state(saved)
        return _Compiled(model, guide, names, graph)


def _weak_loss_fn(method: Callable[..., tuple[torch.Tensor, ...]]) -> LossFn:
    """Call a bound loss method through a weak reference, so the ELBO and its compiler form no cycle."""
    ref = weakref.WeakMethod(method)

    def call(model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        bound = ref()
        assert bound is not None, "the ELBO that owns this compiled loss is gone"
        return bound(model, guide, args, kwargs)

    return call


def _tensor(x: torch.Tensor | float) -> torch.Tensor:
    """``x`` as a tensor: an ELBO term is a number where no site contributed to it."""
    return x if isinstance(x, torch.Tensor) else torch.tensor(x)


class _JitELBO(ELBO):
    """What the Jit ELBOs share: the compiled ``(loss, surrogate_loss)`` and the losses read from it.

    A Jit ELBO lists this class before its eager ELBO among its bases and names, in
    :meth:`_eager_loss_and_surrogate_loss`, the eager computation to compile; the first call
    for each model, guide and arguments runs it eagerly (see :class:`_JitCompiled`).
    """

    _compiled: _JitCompiled | None = None

    @abstractmethod
    def _eager_loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The eager ``(loss, surrogate_loss)``, as tensors: what the compiled graph computes."""
        raise NotImplementedError

    def _jit_loss_and_surrogate_loss(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._compiled is None:
            self._compiled = _JitCompiled(
                _weak_loss_fn(self._eager_loss_and_surrogate_loss), self.ignore_jit_warnings, self.jit_options
            )
        loss, surrogate_loss = self._compiled(model, guide, args, kwargs)
        return loss, surrogate_loss

    def loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        loss, _ = self._jit_loss_and_surrogate_loss(model, guide, args, kwargs)
        value = loss.item()
        warn_if_nan(value, "loss")
        return value

    def differentiable_loss(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> torch.Tensor:
        loss, surrogate_loss = self._jit_loss_and_surrogate_loss(model, guide, args, kwargs)
        warn_if_nan(loss, "loss")
        return loss + (surrogate_loss - surrogate_loss.detach())

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        loss, surrogate_loss = self._jit_loss_and_surrogate_loss(model, guide, args, kwargs)
        torch_backward(surrogate_loss, retain_graph=self.retain_graph)
        value = loss.item()
        warn_if_nan(value, "loss")
        return value

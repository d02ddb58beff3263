"""``CompiledTrace_ELBO`` and ``CompiledTraceMeanField_ELBO``: SVI steps of static models as compiled graphs.

Beyond Pyro. They sit next to the ``Jit*`` ELBOs and are used the same way, by passing one to
:class:`~ember.infer.svi.SVI`: an ELBO class rather than an ``SVI(..., compile=True)`` flag,
because what is compiled is the loss and its gradient (the part of the step that runs the
handlers), because an ELBO already owns its options and caches, and because switching a Pyro
program from ``Trace_ELBO`` to ``JitTrace_ELBO`` is the move users know. The optimizer update
stays beside the graph, in :class:`~ember.optim.PyroOptim`, which steps params sharing
hyperparameters in one update, with torch's fused kernel where the optimizer class has one
(Adam, AdamW, SGD, Adagrad; else ``foreach``), its per-param state and
``get_state``/``set_state``/``save``/``load`` format unchanged. From the second step of a
structure, ``SVI.step`` (with no handler around it and a plain ``PyroOptim``) runs whole from
the graph: a structure-key check, the graph, the fused update, the gradients zeroed, with no
param trace; the params are the graph's, in the order the model and guide first used them.

**When it applies.** Only :meth:`loss_and_grads` (what ``SVI.step`` calls) is compiled;
:meth:`loss` and :meth:`differentiable_loss` are the eager ones. The model and guide must have
static structure given the step's arguments: the same sites, shapes, plates and subsample
sizes whenever the arguments have the same shapes, dtypes and (for non-tensors) values. They
may read tensors from the arguments and the param store; a tensor read from anywhere else (a
global, a closure) is frozen into the graph at capture, as under ``JitTrace_ELBO``, and a
structure that depends on a global Python value that changes is not seen. Two consequences to
keep in mind: randomness from outside torch (Python's :mod:`random`, NumPy) is frozen too, so
draw minibatch indices with torch (``plate(..., subsample_size=...)`` does) or pass them as an
argument; and the model's and guide's Python side effects (printing, counters, appending to a
list) happen on the eager steps only, since replayed steps do not run them.

**Seeding.** The first step of each structure runs eagerly (exactly ``Trace_ELBO``'s step),
then the graph is captured with the RNG state saved and restored. Later steps draw from torch's
global generator in the eager order, so a seed gives the losses, gradients and params of
eager ``Trace_ELBO`` to float error (the loss is summed in the params' dtype rather than in
double). With inductor this holds because it is told to keep torch's random ops
(``fallback_random``); with ``backend=None`` the captured graph runs op by op.

**Guards.** Each step computes a structure key (see :mod:`ember.infer._capture`): model and
guide, argument shapes/dtypes/devices and non-tensor values, the number of params in the store,
the validation flag, and the shapes and constraints of the params the graph reads. A step
run inside other handlers than ``SVI.step``'s own (``poutine.scale``, ``condition``, a trace
of the samples) runs eagerly, with one warning. A new key runs that step
eagerly and captures a graph for it, up to ``max_graphs``, warning once that the structure
changed; earlier keys keep their graphs. A model or guide that reads a tensor's value as a
Python number while the step is captured (data-dependent control flow) cannot be captured: that
structure runs eagerly, with a warning saying why. Validation checks run on the eager step of
each structure only.

**Predictions.** :class:`~ember.infer.predictive.Predictive` with ``parallel=True,
compile=True`` captures its vectorized call the same way (see
:mod:`ember.infer._predictive_capture`): repeated calls with the same shapes replay one graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ember.infer._capture import CapturedStep
from ember.infer.elbo import ELBO, Model
from ember.infer.trace_elbo import Trace_ELBO
from ember.infer.traceenum_elbo import TraceEnum_ELBO
from ember.infer.trace_mean_field_elbo import TraceMeanField_ELBO

__all__ = ["CompiledTraceEnum_ELBO", "CompiledTraceMeanField_ELBO", "CompiledTrace_ELBO"]


class _CompiledELBO(ELBO):
    """The compiled ``loss_and_grads`` over the eager ELBO that follows this class in the MRO.

    The eager class supplies ``loss_and_grads`` (the first step of each structure, and the
    fallback) and :meth:`_tensor_losses` (the ``(loss, surrogate_loss)`` tensors the graph
    computes).
    """

    def __init__(
        self,
        *,
        backend: str | Callable[..., Any] | None = "inductor",
        compile_options: dict[str, Any] | None = None,
        max_graphs: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.compile_options = compile_options
        self.max_graphs = max_graphs
        self._captured: CapturedStep | None = None

    @property
    def compile_seconds(self) -> float:
        """Seconds spent so far capturing graphs and compiling them (on their first call)."""
        return 0.0 if self._captured is None else self._captured.compile_seconds

    def _captured_step(self) -> CapturedStep:
        if self._captured is None:
            self._captured = CapturedStep(
                type(self).__name__,
                self._tensor_losses,
                self._eager_loss_and_grads,
                self.backend,
                self.compile_options,
                self.max_graphs,
            )
        return self._captured

    def _tensor_losses(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _eager_loss_and_grads(self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]) -> float:
        return super().loss_and_grads(model, guide, *args, **kwargs)

    def loss_and_grads(self, model: Model, guide: Model, *args: Any, **kwargs: Any) -> float:
        """The negative ELBO, from the compiled graph; accumulates its gradient into the params."""
        return self._captured_step()(model, guide, args, kwargs)

    def _svi_step(
        self,
        model: Model,
        guide: Model,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        optimize: Callable[[list[torch.Tensor]], None],
        reject: Callable[[float, list[torch.Tensor]], bool] | None,
    ) -> float | None:
        """``SVI.step`` whole, from the graph, or ``None`` where SVI must take its own path
        (the first step of a structure, handlers around the step, an eager fallback)."""
        return self._captured_step().svi_step(model, guide, args, kwargs, optimize, reject)

    def __getstate__(self) -> dict[str, Any]:
        # Graphs are not picklable and are rebuilt on the first step after loading.
        state = dict(self.__dict__)
        state["_captured"] = None
        return state




class CompiledTrace_ELBO(_CompiledELBO, Trace_ELBO):
    """:class:`~ember.infer.trace_elbo.Trace_ELBO` whose ``loss_and_grads`` replays a compiled graph.

    :param backend: the :func:`torch.compile` backend (``"inductor"`` by default; ``"aot_eager"``
        compiles fast and runs the captured ops), or ``None`` to run the captured graph
        without :func:`torch.compile`: no compile time, and still no handler overhead.
    :param compile_options: ``options`` for :func:`torch.compile` (inductor only).
    :param max_graphs: how many distinct structures get a graph; later ones run eagerly.
    :param kwargs: the options of :class:`~ember.infer.elbo.ELBO`.

    See :mod:`ember.infer.compiled_elbo` for when it applies, what it guards and how it
    falls back.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model(x):
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    ...     with ember.plate("data", len(x)):
    ...         ember.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x):
    ...     ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(0.0)), 0.5))
    >>> x = torch.arange(4.0)
    >>> losses = {}
    >>> for elbo in (Trace_ELBO(), CompiledTrace_ELBO(backend=None)):
    ...     ember.clear_param_store()
    ...     _ = torch.manual_seed(0)
    ...     losses[type(elbo).__name__] = [elbo.loss_and_grads(model, guide, x) for _ in range(3)]
    >>> torch.allclose(torch.tensor(losses["Trace_ELBO"]), torch.tensor(losses["CompiledTrace_ELBO"]))
    True
    """

    def _tensor_losses(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._loss_and_surrogate_loss(model, guide, args, kwargs)


class CompiledTraceMeanField_ELBO(CompiledTrace_ELBO, TraceMeanField_ELBO):
    """:class:`~ember.infer.trace_mean_field_elbo.TraceMeanField_ELBO` compiled as :class:`CompiledTrace_ELBO`.

    Analytic KL terms are captured like any other op.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(1.0)), 1.0))
    >>> ember.clear_param_store()
    >>> elbo = CompiledTraceMeanField_ELBO(backend=None)
    >>> [elbo.loss_and_grads(model, guide) for _ in range(2)], ember.param("loc").grad  # KL's gradient: 1 a step
    ([0.5, 0.5], tensor(2.))
    """


class CompiledTraceEnum_ELBO(_CompiledELBO, TraceEnum_ELBO):
    """:class:`~ember.infer.traceenum_elbo.TraceEnum_ELBO` compiled as :class:`CompiledTrace_ELBO`.

    The enumerated sites' values, the contraction (its path is planned once, at capture) and
    the gradient through it are captured like any other op; sequentially enumerated sites
    unroll into the graph. Models must be static as for :class:`CompiledTrace_ELBO`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.infer import config_enumerate
    >>> data = torch.tensor([-2.0, -1.5, 1.8, 2.2])
    >>> @config_enumerate
    ... def model():
    ...     locs = ember.param("locs", torch.tensor([-1.0, 1.0]))
    ...     with ember.plate("data", len(data)):
    ...         z = ember.sample("z", dist.Categorical(torch.ones(2) / 2))
    ...         ember.sample("x", dist.Normal(locs[z], 1.0), obs=data)
    >>> guide = lambda: None
    >>> ember.clear_param_store()
    >>> elbo = CompiledTraceEnum_ELBO(max_plate_nesting=1, backend=None)
    >>> exact = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide)
    >>> [round(elbo.loss_and_grads(model, guide) - exact, 5) for _ in range(3)]
    [0.0, 0.0, 0.0]
    """

    def _tensor_losses(
        self, model: Model, guide: Model, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._loss_and_surrogate_loss(model, guide, args, kwargs)

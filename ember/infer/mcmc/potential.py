"""Potential energies for HMC and NUTS: the model's negative log joint in unconstrained space.

Two ways to evaluate it, with the same numbers:

* the **traced** path runs the model under ``trace(condition(model, values))`` at every call,
  so any model works (dynamic structure, data-dependent control flow, validation on);
* the **compiled** path runs the model through the handlers *once*, recording with
  :func:`torch.fx.experimental.proxy_tensor.make_fx` the aten operations of one whole leapfrog
  step: half-step momentum, position update through the inverse mass matrix, potential and
  gradient (:func:`torch.func.grad_and_value`), second half-step and kinetic energy; batched
  over chains with :func:`torch.func.vmap`. A step of size zero gives the potential and its
  gradient alone. The graph runs without any handler, messenger or ``Trace``, and with one
  Python call per leapfrog step instead of a dozen: through TorchScript (cheap to build), or
  :func:`torch.compile` when ``jit_compile=True`` (minutes of compiling on small machines, so
  only worth it for long runs; see ``bench/mcmc.py``).

The compiled path needs *static structure*: the same sites with the same shapes whatever the
latent values. A model that reads a tensor's value in Python (``if x > 0``, ``.item()``) makes
the recording fail, and a recorded graph whose value disagrees with the traced path at the
initial point is rejected; either way the traced path is used and :attr:`FlatPotential.compiled`
says so.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Mapping, Protocol, Sequence

import torch
from torch.distributions.transforms import Transform

from ember import poutine
from ember.infer.mcmc._graph import drop_identities, fold_constants
from ember.ops.contract import contract_to_tensor
from ember.ops.integrator import is_handled, potential_grad
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample

__all__ = ["FlatPotential", "Layout", "ModelPotential", "StepExtension"]

Params = dict[str, torch.Tensor]


class Layout:
    """Where each latent site lives in the flat unconstrained vector (sites in sorted order).

    :param shapes: the unconstrained shape of each site.
    """

    def __init__(self, shapes: Mapping[str, torch.Size]) -> None:
        self.names = sorted(shapes)
        self.shapes = {name: torch.Size(shapes[name]) for name in self.names}
        self.sizes = [self.shapes[name].numel() for name in self.names]
        self.size = sum(self.sizes)
        offsets = [0]
        for size in self.sizes:
            offsets.append(offsets[-1] + size)
        self.slices = {name: slice(offsets[i], offsets[i + 1]) for i, name in enumerate(self.names)}

    def unpack(self, flat: torch.Tensor) -> Params:
        """Views of ``flat`` (shape ``(..., size)``) as one tensor per site."""
        batch = flat.shape[:-1]
        return {name: flat[..., self.slices[name]].reshape(batch + self.shapes[name]) for name in self.names}

    def pack(self, params: Mapping[str, torch.Tensor], batch_ndim: int = 0) -> torch.Tensor:
        """The flat vector of ``params`` (each with ``batch_ndim`` leading batch dimensions)."""
        if not self.names:
            return torch.zeros(0)
        parts = []
        for name in self.names:
            value = params[name]
            parts.append(value.reshape(value.shape[:batch_ndim] + (-1,)))
        return torch.cat(parts, -1)


class ModelPotential:
    """Pyro's ``potential_fn`` for a model: dict of unconstrained values -> potential energy.

    Runs the model through the handlers at each call (the traced path), so it is
    differentiable with autograd and works for every model.

    :param model: the model.
    :param model_args: its positional arguments.
    :param model_kwargs: its keyword arguments.
    :param transforms: per latent site, the transform from its support to unconstrained space.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        model_args: Sequence[Any],
        model_kwargs: Mapping[str, Any],
        transforms: Mapping[str, Transform],
        enumerated: bool = False,
    ) -> None:
        self.model = model
        self.enumerated = enumerated
        self.model_args = tuple(model_args)
        self.model_kwargs = dict(model_kwargs)
        self.transforms = dict(transforms)
        self.jit_compile = False
        self.layout = Layout({})

    def __call__(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        constrained: Params = {}
        log_jacobian: torch.Tensor | float = 0.0
        for name, value in params.items():
            transform: Any = self.transforms[name]  # torch leaves Transform's methods unannotated
            x = transform.inv(value)
            constrained[name] = x
            log_jacobian = log_jacobian + transform.log_abs_det_jacobian(x, value).sum()
        trace = poutine.trace(poutine.condition(self.model, data=constrained)).get_trace(
            *self.model_args, **self.model_kwargs
        )
        log_joint = _enumerated_log_joint(trace) if self.enumerated else trace.log_prob_sum()
        potential = log_jacobian - log_joint
        assert isinstance(potential, torch.Tensor)
        return potential


def _enumerated_log_joint(trace: Trace) -> torch.Tensor:
    """The log joint with every enumerated dim summed out (plates kept as products)."""
    trace.compute_log_prob()
    trace.pack_tensors()
    tree: dict[frozenset[str], list[torch.Tensor]] = {}
    for site in trace.nodes.values():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        ordinal = frozenset(trace.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized)
        tree.setdefault(ordinal, []).append(site["packed"]["log_prob"])
    enum_dims = set(trace.symbol_to_dim) - set(trace.plate_to_symbol.values())
    return contract_to_tensor(tree, enum_dims, cache={})


class FlatPotential:
    """The potential, its gradient and leapfrog steps on flat vectors, one row per chain.

    :param potential_fn: a dict-based potential (a :class:`ModelPotential` or the user's).
    :param layout: the flat layout of the latent sites.
    :param num_chains: how many rows each call evaluates (vectorized chains).
    :param compile_graph: record the model once and run the graph (see the module docstring);
        only possible for a :class:`ModelPotential`.
    :param jit_compile: run the recorded graph through :func:`torch.compile`.
    :param example: a flat point, shape ``(num_chains, size)``, to record the graph at.
    :param dense: whether the inverse mass matrices given to :meth:`leapfrog` are dense
        (``(C, D, D)``) or diagonal (``(C, D)``).
    :param extension: more per-step work recorded into the same graph after the leapfrog
        step (NUTS's per-leaf bookkeeping), run by :meth:`extended_step`.

    >>> layout = Layout({"x": torch.Size([2])})
    >>> flat = FlatPotential(lambda p: (p["x"] ** 2).sum() / 2, layout)
    >>> flat.value_and_grad(torch.tensor([[1.0, 2.0]]))
    (tensor([2.5000]), tensor([[1., 2.]]))
    """

    def __init__(
        self,
        potential_fn: Callable[[Params], torch.Tensor],
        layout: Layout,
        num_chains: int = 1,
        *,
        compile_graph: bool = False,
        jit_compile: bool = False,
        example: torch.Tensor | None = None,
        dense: bool = False,
        extension: StepExtension | None = None,
    ) -> None:
        self.potential_fn = potential_fn
        self.extension = extension
        self.layout = layout
        self.num_chains = num_chains
        self.dense = dense
        self.compiled = False
        self.failure: str | None = None
        self.max_numel = 0
        self._contiguous = jit_compile
        self._graph: Callable[..., tuple[torch.Tensor, ...]] | None = None
        if compile_graph and isinstance(potential_fn, ModelPotential) and example is not None and layout.size:
            self._graph = self._record(potential_fn, example.detach(), jit_compile)
            self.compiled = self._graph is not None

    def _step_fn(self, potential_fn: ModelPotential) -> Callable[..., tuple[torch.Tensor, ...]]:
        layout = self.layout
        dense = self.dense

        def potential(u: torch.Tensor) -> torch.Tensor:
            return potential_fn(layout.unpack(u))

        grad_and_value = torch.func.grad_and_value(potential)

        def velocity(inverse: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
            return inverse @ r if dense else inverse * r

        extension = self.extension

        def step(
            z: torch.Tensor, r: torch.Tensor, grad: torch.Tensor, size: torch.Tensor, inverse: torch.Tensor,
            *extra: torch.Tensor,
        ) -> tuple[torch.Tensor, ...]:
            half = 0.5 * size
            r = r - half * grad
            z = z + size * velocity(inverse, r)
            grad, pe = grad_and_value(z)
            r = r - half * grad
            kinetic = 0.5 * (r * velocity(inverse, r)).sum()
            if extension is None:
                return z, r, pe, grad, kinetic
            return (z, r, pe, grad, kinetic) + extension.update(z, r, pe, grad, kinetic, inverse, *extra)

        return step

    def _example_args(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        C, D = z.shape
        inverse = torch.eye(D, dtype=z.dtype).expand(C, D, D) if self.dense else torch.ones(C, D, dtype=z.dtype)
        # Distinct tensors: make_fx would record one input aliased to another as the same node.
        size = torch.zeros(C, 1, dtype=z.dtype)
        args: tuple[torch.Tensor, ...] = (z, torch.zeros_like(z), torch.zeros_like(z), size, inverse)
        if self.extension is not None:
            args = args + self.extension.example(z)
        return args

    def _record(
        self, potential_fn: ModelPotential, example: torch.Tensor, jit_compile: bool
    ) -> Callable[..., tuple[torch.Tensor, ...]] | None:
        from torch.fx.experimental.proxy_tensor import make_fx

        fn = self._step_fn(potential_fn)
        # Batched even for one chain: the graph then takes and returns the kernels' (C, ...)
        # tensors as they are, with no per-call indexing in Python.
        fn = torch.func.vmap(fn)
        args = self._example_args(example)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = drop_identities(fold_constants(make_fx(fn, tracing_mode="real")(*args)))
                tensors = [t for _, t in graph.named_buffers()] + [getattr(graph, n.target) for n in graph.graph.nodes if n.op == "get_attr"]
                self.max_numel = max([t.numel() for t in tensors if isinstance(t, torch.Tensor)] + [a.numel() for a in args])
                runner: Callable[..., tuple[torch.Tensor, ...]]
                if jit_compile:
                    runner = torch.compile(graph, dynamic=False, fullgraph=True)
                else:
                    runner = torch.jit.trace(graph, args, check_trace=False)  # type: ignore[no-untyped-call]  # torch.jit.trace is unannotated
                with torch.no_grad():
                    outputs = runner(*args)
        except Exception as e:  # any failure to record means dynamic structure: use the traced path
            self.failure = f"{type(e).__name__}: {e}"
            return None
        expected_value, expected_grad = self._traced(example)
        value = outputs[2].reshape(expected_value.shape)
        grad = outputs[3].reshape(expected_grad.shape)
        scale = 1e-4 * (1 + float(expected_value.abs().max()))
        if not bool(torch.isfinite(expected_value).all()) or not torch.allclose(value, expected_value, rtol=1e-4, atol=scale):
            self.failure = "recorded graph disagrees with the traced model at the initial point"
            return None
        if not torch.allclose(grad, expected_grad, rtol=1e-3, atol=1e-3 * (1 + float(expected_grad.abs().max()))):
            self.failure = "recorded gradient disagrees with the traced model at the initial point"
            return None
        return runner

    def _traced(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = []
        grads = []
        for row in z:
            grad_dict, value = potential_grad(self.potential_fn, self.layout.unpack(row.detach()))
            grads.append(self.layout.pack(grad_dict) if self.layout.names else row.new_zeros(0))
            values.append(value.reshape(()))
        return torch.stack(values), torch.stack(grads)

    def _run(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        assert self._graph is not None
        if self._contiguous:
            # torch.compile guards on strides (even of size-1 dims) and on aliasing between
            # inputs: fresh dense copies give it one layout, so it compiles once.
            args = tuple(a.clone(memory_format=torch.contiguous_format) for a in args)
        try:
            if not torch.is_grad_enabled():  # the samplers' loop already runs without grad
                return self._graph(*args)
            with torch.no_grad():
                return self._graph(*args)
        except RuntimeError as e:
            if not is_handled(e):
                raise
            return None

    def value_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Potentials (shape ``(C,)``) and gradients (``(C, size)``) at the rows of ``z``.

        An exception a registered handler accepts (e.g. a singular matrix) gives an infinite
        potential, which the samplers treat as a divergence.
        """
        if self._graph is None:
            return self._traced(z)
        args = self._example_args(z)
        out = self._run(*args)
        if out is None:
            return z.new_full((z.shape[0],), math.inf), torch.full_like(z, math.nan)
        return out[2], out[3]

    def leapfrog(
        self, z: torch.Tensor, r: torch.Tensor, grad: torch.Tensor, step: torch.Tensor, inverse: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One leapfrog step of size ``step`` (``(C, 1)``) for every chain.

        :param inverse: the inverse mass matrices, ``(C, D)`` (diagonal) or ``(C, D, D)``.
        :returns: new positions, momenta, potentials, gradients and kinetic energies.
        """
        if self._graph is not None:
            extra = () if self.extension is None else self.extension.example(z)
            out = self._run(z, r, grad, step, inverse, *extra)
            if out is not None:
                z1, r1, pe, grad1, kinetic = out[:5]
                return z1, r1, pe, grad1, kinetic
            nan = torch.full_like(z, math.nan)
            return z, r, z.new_full((z.shape[0],), math.inf), nan, z.new_zeros(z.shape[0])
        half = 0.5 * step
        r = r - half * grad
        z = z + step * _velocity(inverse, r)
        pe, grad = self._traced(z)
        r = r - half * grad
        return z, r, pe, grad, 0.5 * (r * _velocity(inverse, r)).sum(-1)


    def extended_step(
        self, z: torch.Tensor, r: torch.Tensor, grad: torch.Tensor, step: torch.Tensor, inverse: torch.Tensor,
        *extra: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """A leapfrog step followed by the extension's update, in one graph call when compiled:
        ``(z, r, pe, grad, kinetic, *extension outputs)``."""
        assert self.extension is not None
        if self._graph is not None:
            out = self._run(z, r, grad, step, inverse, *extra)
            if out is not None:
                return out
        z1, r1, pe, grad1, kinetic = self.leapfrog(z, r, grad, step, inverse)
        return (z1, r1, pe, grad1, kinetic) + self.extension.update(z1, r1, pe, grad1, kinetic, inverse, *extra)


class StepExtension(Protocol):
    """Work appended to the recorded leapfrog step (pure tensor code, batched or per chain)."""

    def update(self, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """From the step's ``(z, r, pe, grad, kinetic)``, the inverse mass matrix and the extra
        inputs, the extra outputs."""
        ...

    def example(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Neutral extra inputs for the flat states ``z`` (``(C, D)``), batched."""
        ...


def _velocity(inverse: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    if inverse.dim() == r.dim():
        return inverse * r
    return (inverse @ r.unsqueeze(-1)).squeeze(-1)

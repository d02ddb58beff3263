"""Potential energies for HMC and NUTS: the model's negative log joint in unconstrained space.

Two ways to evaluate it, with the same numbers:

* the **traced** path runs the model under ``trace(condition(model, values))`` at every call,
  so any model works (dynamic structure, data-dependent control flow, validation on);
* the **compiled** path runs the model through the handlers *once*, recording with
  :func:`torch.fx.experimental.proxy_tensor.make_fx` the aten operations that map the flat
  unconstrained vector to the potential and its gradient (:func:`torch.func.grad_and_value`,
  batched over chains with :func:`torch.func.vmap`). The recorded graph is then run without
  any handler, messenger or ``Trace``: through TorchScript (cheap to build), or through
  :func:`torch.compile` when ``jit_compile=True``.

The compiled path needs *static structure*: the same sites with the same shapes whatever the
latent values. A model that reads a tensor's value in Python (``if x > 0``, ``.item()``) makes
the recording fail, and a recorded graph whose value disagrees with the traced path at the
initial point is rejected; either way the traced path is used and :attr:`FlatPotential.compiled`
says so.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.distributions.transforms import Transform

from ember import poutine
from ember.ops.integrator import is_handled, potential_grad

__all__ = ["FlatPotential", "Layout", "ModelPotential"]

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
    ) -> None:
        self.model = model
        self.model_args = tuple(model_args)
        self.model_kwargs = dict(model_kwargs)
        self.transforms = dict(transforms)

    def __call__(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        constrained: Params = {}
        log_jacobian: torch.Tensor | float = 0.0
        for name, value in params.items():
            transform = self.transforms[name]
            x = transform.inv(value)
            constrained[name] = x
            log_jacobian = log_jacobian + transform.log_abs_det_jacobian(x, value).sum()
        trace = poutine.trace(poutine.condition(self.model, data=constrained)).get_trace(
            *self.model_args, **self.model_kwargs
        )
        log_joint = trace.log_prob_sum()
        potential = log_jacobian - log_joint
        assert isinstance(potential, torch.Tensor)
        return potential


class FlatPotential:
    """The potential and its gradient on flat unconstrained vectors, one row per chain.

    :param potential_fn: a dict-based potential (a :class:`ModelPotential` or the user's).
    :param layout: the flat layout of the latent sites.
    :param num_chains: how many rows each call evaluates (vectorized chains).
    :param compile_graph: record the model once and run the graph (see the module docstring);
        only possible for a :class:`ModelPotential`.
    :param jit_compile: run the recorded graph through :func:`torch.compile`.
    :param example: a flat point, shape ``(num_chains, size)``, to record the graph at.

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
    ) -> None:
        self.potential_fn = potential_fn
        self.layout = layout
        self.num_chains = num_chains
        self.compiled = False
        self.failure: str | None = None
        self._graph: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
        if compile_graph and isinstance(potential_fn, ModelPotential) and example is not None and layout.size:
            self._graph = self._record(potential_fn, example, jit_compile)
            self.compiled = self._graph is not None

    def _flat_potential(self, potential_fn: ModelPotential) -> Callable[[torch.Tensor], torch.Tensor]:
        layout = self.layout

        def flat(u: torch.Tensor) -> torch.Tensor:
            return potential_fn(layout.unpack(u))

        return flat

    def _record(
        self, potential_fn: ModelPotential, example: torch.Tensor, jit_compile: bool
    ) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
        from torch.fx.experimental.proxy_tensor import make_fx

        fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        fn = torch.func.grad_and_value(self._flat_potential(potential_fn))
        if self.num_chains > 1:
            fn = torch.func.vmap(fn)
        example = example.detach() if self.num_chains > 1 else example[0].detach()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = make_fx(fn, tracing_mode="real")(example)
                graph.graph.eliminate_dead_code()
                graph.recompile()
                runner: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
                if jit_compile:
                    runner = torch.compile(graph, dynamic=False, fullgraph=True)
                else:
                    runner = torch.jit.trace(graph, (example,), check_trace=False)
                grad, value = runner(example)
        except Exception as e:  # any failure to record means dynamic structure: use the traced path
            self.failure = f"{type(e).__name__}: {e}"
            return None
        expected_value, expected_grad = self._traced(example if self.num_chains > 1 else example[None])
        value = value.reshape(expected_value.shape)
        grad = grad.reshape(expected_grad.shape)
        finite = bool(torch.isfinite(expected_value).all())
        if not finite or not torch.allclose(value, expected_value, rtol=1e-4, atol=1e-4 * (1 + float(expected_value.abs().max()))):
            self.failure = "recorded graph disagrees with the traced model at the initial point"
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

    def value_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Potentials (shape ``(C,)``) and gradients (``(C, size)``) at the rows of ``z``.

        An exception a registered handler accepts (e.g. a singular matrix) gives an infinite
        potential, which the samplers treat as a divergence.
        """
        if self._graph is None:
            return self._traced(z)
        try:
            if self.num_chains == 1:
                grad, value = self._graph(z[0])
                return value.reshape(1), grad.reshape(1, -1)
            grad, value = self._graph(z)
            return value, grad
        except RuntimeError as e:
            if not is_handled(e):
                raise
            return z.new_full((z.shape[0],), math.inf), torch.full_like(z, math.nan)

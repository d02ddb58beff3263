"""ops.jit.trace: compiled functions that read params agree with the eager ones."""

from __future__ import annotations

import pytest
import torch

import ember
import ember.distributions as dist
from ember.distributions import constraints
from ember.ops.jit import CompiledFunction, trace
from ember.poutine import runtime


def _log_prob(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loc = ember.param("loc", torch.tensor(0.5))
    scale = ember.param("scale", torch.tensor(1.5), constraint=constraints.positive)
    return dist.Normal(loc * x, scale).log_prob(y).sum()


def test_compiled_function_matches_eager_values_and_gradients() -> None:
    compiled = trace(_log_prob, ignore_warnings=True, jit_options={"time_compilation": True})
    assert isinstance(compiled, CompiledFunction)
    x, y = torch.randn(4), torch.randn(4)
    value = compiled(x, y)
    assert compiled.compile_time is not None and len(compiled.compiled) == 1
    eager = _log_prob(x, y)
    assert torch.allclose(value, eager)
    leaves = [getattr(ember.param(name), "unconstrained")() for name in ("loc", "scale")]
    grads = torch.autograd.grad(value, leaves)
    eager_grads = torch.autograd.grad(_log_prob(x, y), leaves)
    assert all(torch.allclose(g, h) for g, h in zip(grads, eager_grads))
    # New data reuses the graph; params updated in place are read on each call.
    with torch.no_grad():
        leaves[0].add_(1.0)
    x2, y2 = torch.randn(4), torch.randn(4)
    assert torch.allclose(compiled(x2, y2), _log_prob(x2, y2))
    assert len(compiled.compiled) == 1
    assert runtime.get_stack() == ()


def test_decorator_form_compiles_one_graph_per_argument_structure() -> None:
    @trace(ignore_warnings=True)
    def f(x: torch.Tensor, power: int = 1, extra: object = None) -> torch.Tensor:
        return ember.param("a", torch.tensor(2.0)) * x**power

    assert torch.allclose(f(torch.ones(2)), torch.full((2,), 2.0))
    assert torch.allclose(f(torch.full((2,), 3.0)), torch.full((2,), 6.0))
    assert len(f.compiled) == 1
    assert torch.allclose(f(torch.full((2,), 3.0), power=2, extra=[1]), torch.full((2,), 18.0))
    assert len(f.compiled) == 2
    with pytest.warns(UserWarning, match="Failed to hash kwargs"):
        f(torch.ones(2), extra=bytearray(b"unhashable"))
    assert runtime.get_stack() == ()

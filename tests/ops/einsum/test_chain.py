"""The chain scan for Markov-structured equations equals pairwise contraction and brute force."""

from __future__ import annotations

import math
import random

import opt_einsum
import pytest
import torch

from ember.ops._dims import named
from ember.ops.einsum import contract
from ember.ops.einsum._chain import chain_plan
from ember.ops.einsum.adjoint import require_backward


def _chain_equation(length: int, seed: int, batch: str = "") -> tuple[str, list[torch.Tensor]]:
    """A chain over ``length`` variables: shuffled pairwise factors (either orientation),
    zero to two unary factors per variable, batch dims on some factors, one batch-only factor."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    symbols = [opt_einsum.get_symbol(10 + k) for k in range(length)]
    inputs = []
    for k in range(length - 1):
        pair = symbols[k] + symbols[k + 1]
        inputs.append(pair if rng.random() < 0.5 else pair[::-1])
    for s in symbols:
        inputs.extend([s] * rng.randint(0, 2))
    inputs = [("".join(rng.sample(batch, rng.randint(0, len(batch)))) + names) for names in inputs]
    if batch:
        inputs.append(batch)
    rng.shuffle(inputs)
    sizes = {**dict.fromkeys(symbols, 3), **{b: 2 + i for i, b in enumerate(batch)}}
    operands = [torch.randn([sizes[d] for d in names], generator=generator, dtype=torch.float64) for names in inputs]
    return ",".join(inputs) + "->" + batch, operands


def _pairwise(equation: str, operands: list[torch.Tensor]) -> torch.Tensor:
    expr = opt_einsum.contract_expression(equation, *[x.shape for x in operands])
    result: torch.Tensor = expr(*operands, backend="ember.ops.einsum.torch_log")
    return result


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch", ["", "i", "ij"])
def test_chain_scan_equals_pairwise_contraction_with_gradients(seed: int, batch: str) -> None:
    equation, operands = _chain_equation(9 + seed, seed, batch)
    assert chain_plan(equation, [tuple(x.shape) for x in operands]) is not None
    leaves = [x.requires_grad_() for x in operands]
    ours = contract(equation, *leaves, backend="ember.ops.einsum.torch_log")
    expected = _pairwise(equation, leaves)
    assert ours.shape == expected.shape
    assert torch.allclose(ours, expected, atol=1e-10)
    grads = torch.autograd.grad(ours.sum(), leaves)
    expected_grads = torch.autograd.grad(expected.sum(), leaves)
    assert all(torch.allclose(g, h, atol=1e-10) for g, h in zip(grads, expected_grads))


def test_chain_scan_equals_the_brute_force_forward_algorithm() -> None:
    generator = torch.Generator().manual_seed(0)
    T, S = 12, 4
    init = torch.randn(S, generator=generator)
    trans = torch.randn(T - 1, S, S, generator=generator)
    emit = torch.randn(T, S, generator=generator)
    symbols = [opt_einsum.get_symbol(k) for k in range(T)]
    inputs = [symbols[0]] + [symbols[t] + symbols[t + 1] for t in range(T - 1)] + symbols
    operands = [init, *trans.unbind(0), *emit.unbind(0)]
    result = contract(",".join(inputs) + "->", *operands, backend="pyro.ops.einsum.torch_log")
    alpha = init + emit[0]
    for t in range(1, T):
        alpha = torch.logsumexp(alpha[:, None] + trans[t - 1], 0) + emit[t]
    assert math.isclose(float(result), float(alpha.logsumexp(0)), rel_tol=1e-6)


def test_chain_scan_keeps_minus_inf_and_finite_gradients_for_structural_zeros() -> None:
    equation, operands = _chain_equation(10, 3)
    inputs = equation.split("->")[0].split(",")
    pair = next(k for k, names in enumerate(inputs) if len(names) == 2)
    operands[pair][0] = -math.inf  # one state can never be left
    leaves = [x.requires_grad_() for x in operands]
    ours = contract(equation, *leaves, backend="ember.ops.einsum.torch_log")
    assert torch.allclose(ours, _pairwise(equation, leaves), atol=1e-10)
    grads = torch.autograd.grad(ours, leaves)
    assert all(torch.isfinite(g).all() for g in grads)
    everything_impossible = [x.detach().clone() for x in operands]
    everything_impossible[pair].fill_(-math.inf)
    assert torch.isneginf(contract(equation, *everything_impossible, backend="ember.ops.einsum.torch_log"))


def test_non_chains_and_adjoint_contractions_take_the_pairwise_path() -> None:
    symbols = "abcdefgh"
    star = ",".join("a" + s for s in symbols[1:]) + ",a,b,c,d,e->"
    assert chain_plan(star, [(2, 2)] * 7 + [(2,)] * 5) is None
    cycle = ",".join(symbols[k] + symbols[(k + 1) % 8] for k in range(8)) + "->"
    assert chain_plan(cycle, [(2, 2)] * 8) is None
    triple = "abc," + ",".join(symbols[k] + symbols[k + 1] for k in range(2, 7)) + ",a,b,c->"
    assert chain_plan(triple, [(2, 2, 2)] + [(2, 2)] * 5 + [(2,)] * 3) is None
    uneven = ",".join(symbols[k] + symbols[k + 1] for k in range(7)) + ",a->"
    assert chain_plan(uneven, [(2, 2)] * 6 + [(2, 3), (2,)]) is None
    # With an adjoint requested the pairwise path runs (it records the backward pass).
    equation, operands = _chain_equation(9, 1)
    leaves = [named(x, names) for x, names in zip(operands, equation.split("->")[0].split(","))]
    for x in leaves:
        require_backward(x)
    result = contract(equation, *leaves, backend="ember.ops.einsum.torch_sample")
    assert hasattr(result, "_pyro_backward")
    assert torch.allclose(result, _pairwise(equation, operands), atol=1e-10)


def test_chain_results_are_shared_inside_shared_intermediates() -> None:
    equation, operands = _chain_equation(9, 2)
    with opt_einsum.shared_intermediates():
        first = contract(equation, *operands, backend="ember.ops.einsum.torch_log")
        again = contract(equation, *operands, backend="ember.ops.einsum.torch_log")
    assert again is first
    assert contract(equation, *operands, backend="ember.ops.einsum.torch_log") is not first


@pytest.mark.parametrize("batch", ["", "i"])
@pytest.mark.parametrize("extra_at", [(), (0,), (4,), (9,), (0, 4, 9)])
def test_uniform_hmm_layout_with_extra_unary_factors_equals_pairwise(batch: str, extra_at: tuple[int, ...]) -> None:
    """Same-layout transitions and emissions stack as one tensor; extra priors go anywhere."""
    generator = torch.Generator().manual_seed(len(extra_at))
    T = 10
    symbols = [opt_einsum.get_symbol(100 + k) for k in range(T)]
    sizes = {"i": 3, **dict.fromkeys(symbols, 4)}
    inputs = [batch + symbols[t + 1] + symbols[t] for t in range(T - 1)]  # reversed orientation
    inputs += [batch + s for s in symbols]
    inputs += [symbols[k] for k in extra_at]
    operands = [torch.randn([sizes[d] for d in names], generator=generator, dtype=torch.float64) for names in inputs]
    equation = ",".join(inputs) + "->" + batch
    plan = chain_plan(equation, [tuple(x.shape) for x in operands])
    assert plan is not None and plan.edge_layout is not None and plan.unary_layout is not None
    leaves = [x.requires_grad_() for x in operands]
    ours = contract(equation, *leaves, backend="ember.ops.einsum.torch_log")
    expected = _pairwise(equation, leaves)
    assert torch.allclose(ours, expected, atol=1e-10)
    grads = torch.autograd.grad(ours.sum(), leaves)
    expected_grads = torch.autograd.grad(expected.sum(), leaves)
    assert all(torch.allclose(g, h, atol=1e-10) for g, h in zip(grads, expected_grads))


def test_large_state_spaces_take_the_pairwise_path() -> None:
    symbols = [opt_einsum.get_symbol(100 + k) for k in range(20)]
    equation = ",".join(symbols[k] + symbols[k + 1] for k in range(19)) + "->"
    assert chain_plan(equation, [(8, 8)] * 19) is not None
    assert chain_plan(equation, [(100, 100)] * 19) is None

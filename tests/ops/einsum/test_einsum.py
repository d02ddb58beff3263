"""contract/contract_expression: every backend against brute force and pyro.ops.einsum."""

from __future__ import annotations

import itertools
from typing import Any

import pyro.ops.einsum as _pyro_einsum
import pytest
import torch

from ember.ops._dims import named
from ember.ops.einsum import BACKENDS, contract, contract_expression, einsum, resolve_backend
from ember.ops.einsum.util import Tensordot

EQUATIONS = [
    "a->",
    "ab->a",
    "ab->ba",
    "ab,b->a",
    "ab,bc->ac",
    "ab,bc->",
    "ab,bc,cd->ad",
    "ab,bc,cd,de->e",
    "abc,cd,a->bd",
    "a,a,a->a",
    "ab,ac,ad->bcd",
    "iab,ibc->iac",
    "ab,cd->abcd",
    ",ab->b",
]
SIZES = {"a": 2, "b": 3, "c": 4, "d": 2, "e": 3, "i": 5}

pyro_einsum: Any = _pyro_einsum  # pyro-ppl is untyped: the oracle's calls are unchecked


def _operands(equation: str, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = equation.split("->")[0].split(",")
    return [torch.randn([SIZES[d] for d in names], generator=generator) for names in inputs]


def _brute_force(equation: str, operands: list[torch.Tensor], reduce: str) -> torch.Tensor:
    """Sum the broadcast log joint over every assignment of the contracted dims."""
    input_part, output = equation.split("->")
    inputs = input_part.split(",")
    joint_names = output + "".join(sorted(set("".join(inputs)) - set(output)))
    total = torch.zeros([SIZES[d] for d in joint_names])
    for names, x in zip(inputs, operands):
        perm = sorted(range(len(names)), key=lambda k: joint_names.index(names[k]))
        view = x.permute(perm).reshape([SIZES[d] if d in names else 1 for d in joint_names])
        total = total + view
    dims = tuple(range(len(output), len(joint_names)))
    if not dims:
        return total
    return torch.logsumexp(total, dims) if reduce == "logsumexp" else total.amax(dims)


@pytest.mark.parametrize("equation", EQUATIONS)
def test_log_backend_equals_brute_force_and_pyro(equation: str) -> None:
    operands = _operands(equation, 0)
    expected = _brute_force(equation, operands, "logsumexp")
    for backend in ["ember.ops.einsum.torch_log", "ember.ops.einsum.torch_sample", "ember.ops.einsum.torch_marginal"]:
        ours = contract(equation, *[named(x.clone(), n) for x, n in zip(operands, equation.split("->")[0].split(","))], backend=backend)
        assert ours.shape == expected.shape
        assert torch.allclose(ours, expected, atol=1e-5), backend
    theirs = pyro_einsum.contract(equation, *operands, backend="pyro.ops.einsum.torch_log")
    assert torch.allclose(contract(equation, *operands, backend="pyro.ops.einsum.torch_log"), theirs, atol=1e-5)


@pytest.mark.parametrize("equation", EQUATIONS)
def test_linear_and_map_backends_equal_brute_force(equation: str) -> None:
    operands = _operands(equation, 1)
    assert torch.allclose(contract(equation, *operands, backend="torch"), torch.einsum(equation, *operands), atol=1e-5)
    names = equation.split("->")[0].split(",")
    ours = contract(equation, *[named(x.clone(), n) for x, n in zip(operands, names)], backend="ember.ops.einsum.torch_map")
    assert torch.allclose(ours, _brute_force(equation, operands, "max"), atol=1e-5)


def test_log_backend_gradients_equal_autograd_of_brute_force() -> None:
    for equation in ["ab,bc->ac", "ab,bc,cd->", "iab,ibc->iac"]:
        operands = [x.requires_grad_() for x in _operands(equation, 2)]
        ours = torch.autograd.grad(contract(equation, *operands, backend="ember.ops.einsum.torch_log").sum(), operands)
        expected = torch.autograd.grad(_brute_force(equation, operands, "logsumexp").sum(), operands)
        for g, h in zip(ours, expected):
            assert torch.allclose(g, h, atol=1e-5)


def test_log_backend_matmul_path_for_large_contractions_matches_pyro() -> None:
    x = torch.randn(30, 200, requires_grad=True)
    y = torch.randn(200, 40, requires_grad=True)
    ours = contract("ab,bc->ac", x, y, backend="ember.ops.einsum.torch_log")
    theirs = pyro_einsum.contract("ab,bc->ac", x, y, backend="pyro.ops.einsum.torch_log")
    assert torch.allclose(ours, theirs, atol=1e-4)
    expected = torch.logsumexp(x[:, :, None] + y[None], 1)
    assert torch.allclose(ours, expected, atol=1e-4)
    grads = torch.autograd.grad(ours.sum(), [x, y])
    expected_grads = torch.autograd.grad(expected.sum(), [x, y])
    assert all(torch.allclose(g, h, atol=1e-4) for g, h in zip(grads, expected_grads))


@pytest.mark.parametrize("shape", [(3, 4), (100, 300)])
def test_log_backend_gives_minus_inf_with_zero_gradients_on_impossible_rows(shape: tuple[int, int]) -> None:
    x = torch.randn(shape)
    x[0] = -float("inf")
    x.requires_grad_()
    y = torch.randn(shape[1], 5, requires_grad=True)
    result = contract("ab,bc->ac", x, y, backend="ember.ops.einsum.torch_log")
    assert torch.isneginf(result[0]).all() and torch.isfinite(result[1:]).all()
    grad_x, grad_y = torch.autograd.grad(result[torch.isfinite(result)].sum() + result[0].clamp(min=0).sum(), [x, y])
    assert torch.isfinite(grad_x).all() and torch.isfinite(grad_y).all()
    assert (grad_x[0] == 0).all()


def test_pyro_backend_names_run_embers_backends() -> None:
    for name in ["torch_log", "torch_map", "torch_sample", "torch_marginal"]:
        assert resolve_backend(f"pyro.ops.einsum.{name}") == f"ember.ops.einsum.{name}"
        assert BACKENDS[f"pyro.ops.einsum.{name}"] == f"ember.ops.einsum.{name}"
    assert resolve_backend("torch") == "torch"
    x, y = named(torch.randn(2, 3), "ab"), named(torch.randn(3), "b")
    assert torch.equal(
        contract("ab,b->a", x, y, backend="pyro.ops.einsum.torch_map"),
        contract("ab,b->a", x, y, backend="ember.ops.einsum.torch_map"),
    )
    assert torch.equal(einsum("ab,b->a", x, y), torch.einsum("ab,b->a", x, y))


def test_contract_expression_is_cached_by_equation_shapes_and_options() -> None:
    first = contract_expression("ab,bc->ac", (2, 3), (3, 4))
    assert contract_expression("ab,bc->ac", (2, 3), (3, 4)) is first
    assert contract_expression("ab,bc->ac", (2, 3), (3, 5)) is not first
    assert contract_expression("ab,bc->ac", (2, 3), (3, 4), optimize="greedy") is not first
    assert contract_expression("ab,bc->ac", (2, 3), (3, 4), cache_path=False) is not first
    out = torch.empty(2, 4)
    x, y = torch.randn(2, 3), torch.randn(3, 4)
    assert contract("ab,bc->ac", x, y, backend="torch", out=out) is out
    assert torch.allclose(out, x @ y)


def test_contract_rejects_a_wrong_number_of_operands() -> None:
    with pytest.raises(ValueError):
        contract("ab,bc->ac", torch.randn(2, 3), backend="ember.ops.einsum.torch_log")


def test_tensordot_from_einsum_equals_torch_tensordot() -> None:
    tensordot = Tensordot(lambda equation, *xs: torch.einsum(equation, *xs))
    x, y = torch.randn(2, 3, 4), torch.randn(4, 3, 5)
    cases: list[tuple[Any, Any]] = [(1, 1), (([1, 2], [1, 0]), ([1, 2], [1, 0])), ((2, 0), ([2], [0])), (([2], [0]), ([2], [0]))]
    for axes, torch_axes in cases:
        assert torch.allclose(tensordot(x, y, axes), torch.tensordot(x, y, dims=torch_axes), atol=1e-5)
    for i, j in itertools.product(range(2), range(5)):
        assert torch.allclose(tensordot(x, y, ([1, 2], [1, 0]))[i, j], (x[i] * y.permute(1, 0, 2)[:, :, j]).sum(), atol=1e-5)

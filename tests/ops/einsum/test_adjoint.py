"""Backward passes: argmax equals brute force, samples follow the exact posterior, marginals are exact."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pyro.ops.einsum as _pyro_einsum
import pyro.ops.einsum.adjoint as _pyro_adjoint
import pytest
import torch

from ember.ops._dims import dims_of, named
from ember.ops.einsum import contract
from ember.ops.einsum.adjoint import SAMPLE_SYMBOL, require_backward, sample_dims_of, unflatten

SIZES = {"a": 2, "b": 3, "c": 4, "d": 2, "n": 1}

pyro_einsum: Any = _pyro_einsum  # pyro-ppl is untyped: the oracle's calls are unchecked
pyro_adjoint: Any = _pyro_adjoint  # pyro-ppl is untyped: the oracle's calls are unchecked


def _leaves(equation: str, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    leaves = []
    for names in equation.split("->")[0].split(","):
        x = torch.randn([SIZES[d] for d in names], generator=generator) * 1.5
        leaves.append(named(x, names))
    return leaves


def _log_joint(equation: str, leaves: list[torch.Tensor], values: dict[str, int]) -> float:
    inputs = equation.split("->")[0].split(",")
    return sum(float(x[tuple(values[d] for d in names)]) for names, x in zip(inputs, leaves))


def _values_at_leaves(leaves: list[torch.Tensor], batch_index: dict[str, int]) -> dict[str, int]:
    """Read every sampled dim's value (at one batch position) from the leaves' backward results."""
    values: dict[str, int] = {}
    for x in leaves:
        sample = x._pyro_backward_result  # type: ignore[attr-defined]
        if sample is None:
            continue
        names = dims_of(sample)[1:]
        for dim, row in zip(sample_dims_of(sample), sample):
            value = int(row[tuple(batch_index.get(d, 0) for d in names)])
            assert values.setdefault(dim, value) == value, "leaves disagree on a sampled value"
    return values


MAP_EQUATIONS = ["ab->", "ab,bc->", "ab,bc,cd->", "ab,bc,cd->a", "ab,ac,ad->", "ab,bc,ca->", "a,ab,b->b"]


@pytest.mark.parametrize("equation", MAP_EQUATIONS)
@pytest.mark.parametrize("seed", range(3))
def test_map_backward_gives_the_brute_force_argmax(equation: str, seed: int) -> None:
    leaves = _leaves(equation, seed)
    for x in leaves:
        require_backward(x)
    result = contract(equation, *leaves, backend="ember.ops.einsum.torch_map")
    result._pyro_backward()  # type: ignore[attr-defined]
    output = equation.split("->")[1]
    contracted = sorted(set(equation) - set(",->") - set(output))
    for kept in itertools.product(*(range(SIZES[d]) for d in output)):
        fixed = dict(zip(output, kept))
        best = max(
            itertools.product(*(range(SIZES[d]) for d in contracted)),
            key=lambda v: _log_joint(equation, leaves, {**fixed, **dict(zip(contracted, v))}),
        )
        assert _values_at_leaves(leaves, fixed) == dict(zip(contracted, best))
        best_value = _log_joint(equation, leaves, {**fixed, **dict(zip(contracted, best))})
        assert math.isclose(float(result[kept]), best_value, rel_tol=1e-5, abs_tol=1e-5)


def _wilson_hilferty_999(dof: int) -> float:
    """The 0.999 quantile of a chi-squared distribution (Wilson-Hilferty approximation)."""
    z = 3.090
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


@pytest.mark.parametrize("equation", ["ab,bc,cd->", "ab,ac,ad->", "ab,bc,ca->"])
def test_sample_backward_draws_from_the_exact_posterior(equation: str) -> None:
    torch.manual_seed(0)
    num_samples = 4000
    SIZES["n"] = num_samples  # a batch dim of independent draws
    try:
        base = _leaves(equation, 7)
        leaves = [named(base[0].expand(num_samples, *base[0].shape), "n" + dims_of(base[0]))] + base[1:]
        for x in leaves:
            require_backward(x)
        inputs = equation.split("->")[0].split(",")
        batched = ",".join(["n" + inputs[0]] + inputs[1:]) + "->n"
        result = contract(batched, *leaves, backend="ember.ops.einsum.torch_sample")
        result._pyro_backward()  # type: ignore[attr-defined]
        dims = sorted(set("".join(inputs)))
        counts: dict[tuple[int, ...], int] = {}
        for n in range(num_samples):
            values = _values_at_leaves(leaves, {"n": n})
            key = tuple(values[d] for d in dims)
            counts[key] = counts.get(key, 0) + 1
    finally:
        SIZES["n"] = 1
    assignments = list(itertools.product(*(range(SIZES[d]) for d in dims)))
    log_p = torch.tensor([_log_joint(equation, base, dict(zip(dims, v))) for v in assignments])
    probs = (log_p - log_p.logsumexp(0)).exp()
    expected = probs * num_samples
    observed = torch.tensor([float(counts.get(v, 0)) for v in assignments])
    keep = expected > 5  # pool the rare cells, as the chi-squared approximation needs
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    rest_expected, rest_observed = expected[~keep].sum(), observed[~keep].sum()
    if rest_expected > 0:
        chi2 = chi2 + (rest_observed - rest_expected) ** 2 / rest_expected
    dof = int(keep.sum()) - (0 if rest_expected > 0 else 1)
    assert float(chi2) < _wilson_hilferty_999(dof)


@pytest.mark.parametrize("equation", ["ab,bc,cd->", "ab,bc,cd->a", "ab,ac,ad->", "a,ab,b->"])
def test_marginal_backward_gives_brute_force_marginals_and_pyros(equation: str) -> None:
    leaves = [x.clone() for x in _leaves(equation, 3)]
    theirs = [x.clone() for x in leaves]
    for x, y in zip(leaves, theirs):
        require_backward(x)
        pyro_adjoint.require_backward(y)
    inputs = equation.split("->")[0].split(",")
    result = contract(equation, *leaves, backend="ember.ops.einsum.torch_marginal")
    result._pyro_backward()  # type: ignore[attr-defined]
    pyro_result = pyro_einsum.contract(equation, *theirs, backend="pyro.ops.einsum.torch_marginal")
    pyro_result._pyro_backward()
    dims = sorted(set("".join(inputs)))
    assignments = list(itertools.product(*(range(SIZES[d]) for d in dims)))
    for names, x, y in zip(inputs, leaves, theirs):
        marginal = x._pyro_backward_result  # type: ignore[attr-defined]
        assert torch.allclose(marginal, getattr(y, "_pyro_backward_result"), atol=1e-5)
        expected = torch.full([SIZES[d] for d in names], -math.inf)
        for v in assignments:
            values = dict(zip(dims, v))
            at = tuple(values[d] for d in names)
            expected[at] = torch.logaddexp(expected[at], torch.tensor(_log_joint(equation, leaves, values)))
        assert torch.allclose(marginal, expected, atol=1e-4)


def test_unflatten_splits_flat_indices_into_one_row_per_dim() -> None:
    flat = named(torch.arange(24).reshape(2, 12), "z")
    sample = unflatten(flat, "z", "abc", (2, 3, 2))
    assert dims_of(sample) == SAMPLE_SYMBOL + "z" and sample_dims_of(sample) == "abc"
    for i, j in itertools.product(range(2), range(12)):
        a, b, c = sample[:, i, j].tolist()
        assert a * 6 + b * 2 + c == flat[i, j]
    with pytest.raises(ValueError, match="no contracted dims"):
        unflatten(flat, "z", "", ())


def test_contraction_without_marked_leaves_records_no_backward() -> None:
    leaves = _leaves("ab,bc->", 0)
    for backend in ["torch_map", "torch_sample", "torch_marginal"]:
        result = contract("ab,bc->", *leaves, backend=f"ember.ops.einsum.{backend}")
        assert not hasattr(result, "_pyro_backward")


def test_shared_intermediates_never_hand_a_result_without_adjoint_to_a_backward_pass() -> None:
    import opt_einsum

    leaves = _leaves("ab,bc,cd->", 4)
    with opt_einsum.shared_intermediates():
        plain = contract("ab,bc,cd->", *leaves, backend="ember.ops.einsum.torch_map")
        again = contract("ab,bc,cd->", *leaves, backend="ember.ops.einsum.torch_map")
        assert again is plain and not hasattr(plain, "_pyro_backward")
        for x in leaves:
            require_backward(x)
        marked = contract("ab,bc,cd->", *leaves, backend="ember.ops.einsum.torch_map")
    assert marked is not plain and torch.equal(marked, plain)
    marked._pyro_backward()  # type: ignore[attr-defined]
    assert all(x._pyro_backward_result is not None for x in leaves)  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["torch_map", "torch_marginal"])
def test_opt_einsums_own_dispatch_with_tensordot_and_transpose_gives_the_same_adjoints(backend: str) -> None:
    import opt_einsum

    equation = "ab,cb,cd->da"  # tensordot steps whose results need transposing
    direct = _leaves(equation, 6)
    routed = [named(x.clone(), dims_of(x)) for x in direct]
    for x, y in zip(direct, routed):
        require_backward(x)
        require_backward(y)
    ours = contract(equation, *direct, backend=f"ember.ops.einsum.{backend}")
    expr = opt_einsum.contract_expression(equation, *[x.shape for x in routed])
    theirs = expr(*routed, backend=f"ember.ops.einsum.{backend}")
    assert torch.allclose(ours, theirs, atol=1e-5)
    ours._pyro_backward()  # type: ignore[attr-defined]
    theirs._pyro_backward()
    for x, y in zip(direct, routed):
        a, b = x._pyro_backward_result, y._pyro_backward_result  # type: ignore[attr-defined]
        if backend == "torch_marginal":
            assert torch.allclose(a, b, atol=1e-5)
        else:
            assert {d: r for d, r in zip(sample_dims_of(a), a.tolist())} == {d: r for d, r in zip(sample_dims_of(b), b.tolist())}


def test_transpose_keeps_names_and_permutes_messages_back() -> None:
    from ember.ops.einsum.adjoint import transpose

    x = named(torch.randn(2, 3), "ab")
    require_backward(x)
    t = transpose(x, (1, 0))
    assert dims_of(t) == "ba" and torch.equal(t, x.t())
    message = torch.randn(3, 2)
    node = t._pyro_backward  # type: ignore[attr-defined]
    ((leaf, routed),) = list(node.process(message))
    assert torch.equal(routed, message.t())

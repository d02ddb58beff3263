"""Plated contraction: brute-force sums over unrolled plates, parity with pyro.ops.contract, errors."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import OrderedDict
from typing import Any

import pyro.ops.contract as _pyro_contract
import pyro.ops.einsum.adjoint as _pyro_adjoint
import pyro.ops.rings as _pyro_rings
import pytest
import torch

from ember.ops._dims import dims_of, named
from ember.ops.contract import contract_tensor_tree, contract_to_tensor, einsum, naive_ubersum, ubersum
from ember.ops.einsum.adjoint import require_backward, sample_dims_of
from ember.ops.rings import LogRing, MapRing, SampleRing

SIZES = {"a": 2, "b": 2, "c": 2, "d": 2, "i": 3, "j": 2, "n": 1}
PLATES = set("ijn")

# (term dims, term plates) per tree, and the sum dims.
TREES = [
    ([("a", ""), ("ai", "i"), ("abi", "i")], "ab"),
    ([("a", ""), ("ai", "i"), ("abi", "i"), ("bcij", "ij")], "abc"),
    ([("a", ""), ("ab", ""), ("bi", "i"), ("bj", "j")], "ab"),
    ([("ai", "i"), ("bj", "j"), ("", "")], "ab"),
    ([("a", ""), ("ai", "i"), ("bi", "i"), ("b", "")], "ab"),
    ([("ai", "i"), ("i", "i"), ("abi", "i")], "ab"),
    ([("ab", ""), ("bci", "i"), ("cdij", "ij")], "abcd"),
]

pyro_contract: Any = _pyro_contract  # pyro-ppl is untyped: the oracle's calls are unchecked
pyro_adjoint: Any = _pyro_adjoint  # pyro-ppl is untyped: the oracle's calls are unchecked
pyro_rings: Any = _pyro_rings  # pyro-ppl is untyped: the oracle's calls are unchecked


def _tree(spec: list[tuple[str, str]], seed: int) -> OrderedDict[frozenset[str], list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    tree: OrderedDict[frozenset[str], list[torch.Tensor]] = OrderedDict()
    for names, plates in spec:
        x = torch.randn([SIZES[d] for d in names], generator=generator)
        tree.setdefault(frozenset(plates), []).append(named(x, names))
    return tree


def _copy_tree(tree: OrderedDict[frozenset[str], list[torch.Tensor]]) -> OrderedDict[frozenset[str], list[torch.Tensor]]:
    return OrderedDict((o, [named(t.clone(), dims_of(t)) for t in ts]) for o, ts in tree.items())


def _unrolled_log_joints(tree: OrderedDict[frozenset[str], list[torch.Tensor]], sum_dims: str) -> tuple[list[dict[tuple[str, tuple[int, ...]], int]], torch.Tensor]:
    """Every assignment of the unrolled variables (one per sum dim per slice of its plates)."""
    terms = [t for ts in tree.values() for t in ts]
    context: dict[str, set[str]] = {}
    for t in terms:
        plates = set(dims_of(t)) & PLATES
        for d in set(dims_of(t)) & set(sum_dims):
            context[d] = context.get(d, plates) & plates
    variables = [
        (d, idx) for d in sorted(context) for idx in itertools.product(*(range(SIZES[p]) for p in sorted(context[d])))
    ]
    assignments, log_joints = [], []
    for values in itertools.product(*(range(SIZES[d]) for d, _ in variables)):
        assignment = dict(zip(variables, values))
        total = 0.0
        for t in terms:
            names = dims_of(t)
            term_plates = [d for d in names if d in PLATES]
            for slice_ in itertools.product(*(range(SIZES[p]) for p in term_plates)):
                at = dict(zip(term_plates, slice_))
                index = tuple(
                    at[d] if d in PLATES else assignment[(d, tuple(at[p] for p in sorted(context[d])))] for d in names
                )
                total += float(t[index])
        assignments.append(assignment)
        log_joints.append(total)
    return assignments, torch.tensor(log_joints, dtype=torch.float64)


@pytest.mark.parametrize("case", range(len(TREES)))
def test_contract_to_tensor_equals_the_brute_force_sum_over_unrolled_plates(case: int) -> None:
    spec, sum_dims = TREES[case]
    tree = _tree(spec, case)
    _, log_joints = _unrolled_log_joints(tree, sum_dims)
    result = contract_to_tensor(tree, set(sum_dims))
    assert math.isclose(float(result), float(log_joints.logsumexp(0)), rel_tol=1e-5, abs_tol=1e-5)
    theirs = pyro_contract.contract_to_tensor(_copy_tree(tree), set(sum_dims))
    assert torch.allclose(result, theirs, atol=1e-5)


@pytest.mark.parametrize("case", range(len(TREES)))
def test_contract_tensor_tree_matches_pyro_term_by_term(case: int) -> None:
    spec, sum_dims = TREES[case]
    tree = _tree(spec, case)
    before = {o: [t.clone() for t in ts] for o, ts in tree.items()}
    ours = contract_tensor_tree(tree, set(sum_dims))
    theirs = pyro_contract.contract_tensor_tree(_copy_tree(tree), set(sum_dims))
    # The same contracted terms in each plate context (components may come in another order).
    assert set(ours) == set(theirs)
    for o in ours:
        ours_terms = sorted(ours[o], key=lambda t: (dims_of(t), float(t.sum())))
        theirs_terms = sorted(theirs[o], key=lambda t: (t._pyro_dims, float(t.sum())))
        assert [dims_of(t) for t in ours_terms] == [t._pyro_dims for t in theirs_terms]
        for x, y in zip(ours_terms, theirs_terms):
            assert torch.allclose(x, y, atol=1e-5)
    # The input tree is left as it was.
    assert all(torch.equal(t, u) for o in tree for t, u in zip(tree[o], before[o]))
    _, log_joints = _unrolled_log_joints(tree, sum_dims)
    total = sum(LogRing().product(t, o).sum() for o, ts in ours.items() for t in ts)
    assert math.isclose(float(total), float(log_joints.logsumexp(0)), rel_tol=1e-5, abs_tol=1e-5)


def test_contract_to_tensor_keeps_target_dims_like_pyro() -> None:
    spec, sum_dims = TREES[0]
    tree = _tree(spec, 0)
    assignments, log_joints = _unrolled_log_joints(tree, sum_dims)
    result = contract_to_tensor(tree, set(sum_dims), target_dims={"a"})
    assert dims_of(result) == "a"
    for a in range(SIZES["a"]):
        rows = torch.tensor([v[("a", ())] == a for v in assignments])
        assert math.isclose(float(result[a]), float(log_joints[rows].logsumexp(0)), rel_tol=1e-5)
    kept = contract_to_tensor(tree, set(sum_dims), target_ordinal=frozenset("i"), target_dims={"b"})
    theirs = pyro_contract.contract_to_tensor(_copy_tree(tree), set(sum_dims), frozenset("i"), {"b"})
    assert dims_of(kept) == theirs._pyro_dims and torch.allclose(kept, theirs, atol=1e-5)


def test_non_tree_plates_and_dropped_plates_raise_pyros_errors() -> None:
    tree = _tree([("ai", "i"), ("abij", "ij"), ("bj", "j")], 0)
    with pytest.raises(NotImplementedError, match="Expected tree-structured plate nesting"):
        contract_to_tensor(tree, {"a", "b"})
    tree = _tree([("a", ""), ("abi", "i")], 0)
    with pytest.raises(ValueError, match="nonsensical to preserve a plated dim"):
        contract_to_tensor(tree, {"a", "b"}, target_dims={"b"})
    with pytest.raises(ValueError, match="subset of sum_dims"):
        contract_to_tensor(tree, {"a"}, target_dims={"b"})


EQUATIONS = [
    ("a,ai->", "i"),
    ("ab,ai,bi->", "i"),
    ("ab,ai,bi->b", "i"),
    ("a,ai,aij->", "ij"),
    ("ai->", "i"),
    ("abi,abi->bi", "i"),
    ("a,ai,bi,b->", "i"),
    ("ab,bi,bci->ab", "i"),
    ("a,ab,bi,bci,ci->,b", "i"),
    ("ij,aij,ai,aj->", "ij"),
    ("ab,bc->ac", ""),
    ("ai,bi,ab->,a,b", "i"),
]


@pytest.mark.parametrize(("equation", "plates"), EQUATIONS)
@pytest.mark.parametrize("backend", ["torch", "pyro.ops.einsum.torch_log"])
def test_einsum_equals_naive_unrolling_and_pyro(equation: str, plates: str, backend: str) -> None:
    generator = torch.Generator().manual_seed(len(equation))
    inputs = equation.split("->")[0].split(",")
    operands = [torch.randn([SIZES[d] for d in names], generator=generator) for names in inputs]
    if backend == "torch":
        operands = [x.exp() for x in operands]
    ours = einsum(equation, *[x.clone() for x in operands], plates=plates, backend=backend, modulo_total=True)
    theirs = pyro_contract.einsum(equation, *[x.clone() for x in operands], plates=plates, backend=backend, modulo_total=True)
    naive = naive_ubersum(equation, *operands, plates=plates, backend=backend)
    theirs_naive = pyro_contract.naive_ubersum(equation, *operands, plates=plates, backend=backend)
    for x, y, z, w in zip(ours, theirs, naive, theirs_naive):
        assert x.shape == y.shape == z.shape
        assert torch.allclose(x, y, rtol=1e-4, atol=1e-5)
        assert torch.allclose(z, w, rtol=1e-4, atol=1e-5)
    # Without plated outputs there is no free scale: the unrolled sum is exact.
    for out, x, z in zip(equation.split("->")[1].split(","), ours, naive):
        if not set(out) & set(plates):
            assert torch.allclose(x, z, rtol=1e-4, atol=1e-5)


def test_naive_ubersum_equals_explicit_loops() -> None:
    x = torch.randn(2)
    y = torch.randn(2, 3)  # a, i
    z = torch.randn(2, 4, 3)  # a, b, i: one b per slice of i
    (result,) = naive_ubersum("a,ai,abi->", x, y, z, plates="i")
    expected = torch.logsumexp(torch.stack([x[a] + sum(y[a, i] + z[a, :, i].logsumexp(0) for i in range(3)) for a in range(2)]), 0)
    assert torch.allclose(result, expected, atol=1e-5)


def test_einsum_errors_follow_pyro() -> None:
    x, y = torch.randn(2, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="Dimension size mismatch at dim 'a': 4 vs 2"):
        einsum("ai,ai->", x, y, plates="i")
    with pytest.raises(NotImplementedError, match="modulo_total=True"):
        einsum("ai->a", x, plates="i")
    with pytest.raises(NotImplementedError, match="ellipsis"):
        einsum("...a->", x)
    with pytest.raises(NotImplementedError, match="Only the following pyro backends"):
        einsum("ai->", x, plates="i", backend="numpy")
    with pytest.raises(ValueError, match="nonsensical"):
        einsum("a,abi->b", torch.randn(2), torch.randn(2, 3, 3), plates="i", modulo_total=True)
    with pytest.raises(NotImplementedError, match="tree-structured"):
        einsum("ai,abij,bj->", torch.randn(2, 3), torch.randn(2, 3, 3, 2), torch.randn(3, 2), plates="ij")


def test_ubersum_warns_deprecation_and_defaults_to_log_space() -> None:
    x = torch.randn(2, 3)
    with pytest.warns(DeprecationWarning, match="'ubersum' is deprecated"):
        (result,) = ubersum("ai->", x, plates="i")
    assert torch.allclose(result, x.logsumexp(0).sum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ubersum("ai->", x, batch_dims="i")
    assert any("'batch_dims' is deprecated" in str(w.message) for w in caught)


def test_einsum_with_repeated_operand_objects_counts_each_occurrence() -> None:
    x = torch.randn(2, 3)
    (result,) = einsum("ai,ai->", x, x, plates="i", backend="pyro.ops.einsum.torch_log")
    assert torch.allclose(result, (2 * x).logsumexp(0).sum(), atol=1e-5)


def _marked_tree(spec: list[tuple[str, str]], seed: int, adjoint: object) -> tuple[OrderedDict[frozenset[str], list[torch.Tensor]], list[torch.Tensor]]:
    tree = _copy_tree(_tree(spec, seed))
    leaves = [t for ts in tree.values() for t in ts]
    for t in leaves:
        adjoint.require_backward(t)  # type: ignore[attr-defined]
    return tree, leaves


@pytest.mark.parametrize("case", [0, 1, 2, 4, 6])
def test_map_ring_backward_through_plates_matches_pyro(case: int) -> None:
    import ember.ops.einsum.adjoint as adjoint

    spec, sum_dims = TREES[case]
    ours_tree, ours_leaves = _marked_tree(spec, case, adjoint)
    theirs_tree, theirs_leaves = _marked_tree(spec, case, pyro_adjoint)
    for o, ts in contract_tensor_tree(ours_tree, set(sum_dims), ring=MapRing(dim_to_size=SIZES)).items():
        for t in ts:
            t._pyro_backward()  # type: ignore[attr-defined]
    for o, ts in pyro_contract.contract_tensor_tree(theirs_tree, set(sum_dims), ring=pyro_rings.MapRing(dim_to_size=SIZES)).items():
        for t in ts:
            t._pyro_backward()
    for x, y in zip(ours_leaves, theirs_leaves):
        a, b = x._pyro_backward_result, y._pyro_backward_result  # type: ignore[attr-defined]
        assert (a is None) == (b is None)
        if a is not None:
            # The same value for each sampled dim (rows may be listed in another order).
            assert dims_of(a) == b._pyro_dims and sorted(sample_dims_of(a)) == sorted(b._pyro_sample_dims)
            for dim, row in zip(sample_dims_of(a), a):
                assert torch.equal(row.expand_as(b[0]), b[b._pyro_sample_dims.index(dim)])


def test_map_ring_backward_gives_the_brute_force_argmax_over_unrolled_plates() -> None:
    spec, sum_dims = TREES[0]  # a outside, b inside plate i
    tree = _tree(spec, 11)
    for t in (t for ts in tree.values() for t in ts):
        require_backward(t)
    assignments, log_joints = _unrolled_log_joints(tree, sum_dims)
    best = assignments[int(log_joints.argmax())]
    for ts in contract_tensor_tree(tree, set(sum_dims), ring=MapRing(dim_to_size=SIZES)).values():
        for t in ts:
            t._pyro_backward()  # type: ignore[attr-defined]
    abi = tree[frozenset("i")][1]
    sample = abi._pyro_backward_result  # type: ignore[attr-defined]
    rows = dict(zip(sample_dims_of(sample), sample))
    assert dims_of(sample)[1:] == "i"
    assert all(int(rows["a"].expand(3)[i]) == best[("a", ())] for i in range(3))
    assert [int(rows["b"][i]) for i in range(3)] == [best[("b", (i,))] for i in range(3)]


def test_sample_ring_backward_through_plates_follows_the_exact_posterior() -> None:
    torch.manual_seed(0)
    num_samples = 3000
    SIZES["n"] = num_samples  # plate n replicates the model: independent draws
    try:
        generator = torch.Generator().manual_seed(5)
        base_a, base_abi = torch.randn(2, generator=generator), torch.randn(2, 2, 3, generator=generator) * 1.5
        tree: OrderedDict[frozenset[str], list[torch.Tensor]] = OrderedDict()
        tree[frozenset("n")] = [named(base_a[:, None].expand(2, num_samples), "an")]
        tree[frozenset("in")] = [named(base_abi[..., None].expand(2, 2, 3, num_samples), "abin")]
        for t in (t for ts in tree.values() for t in ts):
            require_backward(t)
        for ts in contract_tensor_tree(tree, {"a", "b"}, ring=SampleRing(dim_to_size=SIZES)).values():
            for t in ts:
                t._pyro_backward()  # type: ignore[attr-defined]
        sample = tree[frozenset("in")][0]._pyro_backward_result  # type: ignore[attr-defined]
        assert set(sample_dims_of(sample)) == {"a", "b"}
        rows = {d: row.expand(-1, -1) if row.dim() == 2 else row for d, row in zip(sample_dims_of(sample), sample)}
        names = dims_of(sample)[1:]
        assert names == "in"
        counts: dict[tuple[int, ...], int] = {}
        for n in range(num_samples):
            key = (int(rows["a"][0, n]),) + tuple(int(rows["b"][i, n]) for i in range(3))
            counts[key] = counts.get(key, 0) + 1
    finally:
        SIZES["n"] = 1
    keys = list(itertools.product(range(2), range(2), range(2), range(2)))
    log_p = torch.tensor([float(base_a[a] + sum(base_abi[a, bs[i], i] for i in range(3))) for a, *bs in keys])
    expected = (log_p - log_p.logsumexp(0)).exp() * num_samples
    observed = torch.tensor([float(counts.get(k, 0)) for k in keys])
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    dof = len(keys) - 1
    assert chi2 < dof * (1 - 2 / (9 * dof) + 3.09 * math.sqrt(2 / (9 * dof))) ** 3


@pytest.mark.parametrize("case", [0, 1, 2, 4, 6])
def test_marginal_ring_backward_through_plates_matches_pyro(case: int) -> None:
    import ember.ops.einsum.adjoint as adjoint
    from ember.ops.rings import MarginalRing

    spec, sum_dims = TREES[case]
    ours_tree, ours_leaves = _marked_tree(spec, case, adjoint)
    theirs_tree, theirs_leaves = _marked_tree(spec, case, pyro_adjoint)
    ours = contract_to_tensor(ours_tree, set(sum_dims), ring=MarginalRing(dim_to_size=SIZES))
    theirs = pyro_contract.contract_to_tensor(theirs_tree, set(sum_dims), ring=pyro_rings.MarginalRing(dim_to_size=SIZES))
    assert torch.allclose(ours, theirs, atol=1e-5)
    ours._pyro_backward()  # type: ignore[attr-defined]
    theirs._pyro_backward()
    for x, y in zip(ours_leaves, theirs_leaves):
        a, b = x._pyro_backward_result, y._pyro_backward_result  # type: ignore[attr-defined]
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a.expand_as(b), b, atol=1e-5)

"""Index/Vindex: parity with pyro.ops.indexing on random shapes, brute-force values, bad input."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pyro.ops.indexing as _pyro_indexing
import pytest
import torch

from ember.ops.indexing import Index, Vindex, index, vindex

pyro_indexing: Any = _pyro_indexing  # pyro-ppl is untyped: the oracle's calls are unchecked


def _random_case(rng: random.Random) -> tuple[torch.Tensor, tuple[Any, ...]]:
    """A tensor with batch and event dims and a vindex whose tensor indices broadcast."""
    event_shape = [rng.randint(2, 4) for _ in range(rng.randint(1, 3))]
    batch_shape = [rng.choice([1, 2, 3]) for _ in range(rng.randint(0, 2))]
    use_ellipsis = bool(batch_shape) or rng.random() < 0.5
    x = torch.randn(batch_shape + event_shape)
    # Index batch shapes: enumeration-style dims on the left, all broadcastable with batch_shape.
    index_batch = [rng.choice([1, s]) for s in batch_shape]
    index_batch = [rng.choice([1, 2]) for _ in range(rng.randint(0, 2))] + index_batch
    args: list[Any] = []
    for size in event_shape:
        kind = rng.choice(["slice", "int", "tensor", "tensor"])
        if kind == "slice":
            args.append(slice(None))
        elif kind == "int":
            args.append(rng.randrange(size))
        else:
            shape = [s if rng.random() < 0.7 else 1 for s in index_batch]
            args.append(torch.randint(size, shape))
    if rng.random() < 0.3 and isinstance(args[-1], slice) and not use_ellipsis:
        args.pop()  # a trailing slice may be left out
    return x, ((Ellipsis,) if use_ellipsis else ()) + tuple(args)


def test_vindex_matches_pyro_on_random_shapes() -> None:
    rng = random.Random(0)
    for case in range(400):
        x, args = _random_case(rng)
        expected = pyro_indexing.vindex(x, args)
        actual = Vindex(x)[args]
        assert actual.shape == expected.shape, (case, x.shape, args)
        assert torch.equal(actual, expected), (case, x.shape, args)


def test_vindex_selects_each_batch_element_like_a_python_loop() -> None:
    x = torch.randn(2, 4, 5, 6)  # batch (2,), event (4, 5, 6)
    i = torch.randint(4, (3, 1))  # an enumeration dim left of the batch dim
    j = torch.randint(6, (2,))
    result = Vindex(x)[..., i, :, j]
    assert result.shape == (3, 2, 5)
    for e, b in itertools.product(range(3), range(2)):
        assert torch.equal(result[e, b], x[b, i[e, 0], :, j[b]])


def test_vindex_without_tensor_indices_is_plain_indexing() -> None:
    x = torch.randn(3, 4, 5)
    assert torch.equal(Vindex(x)[1, :, 2], x[1, :, 2])
    assert torch.equal(Vindex(x)[..., 2], x[..., 2])
    assert vindex(x, (Ellipsis,)) is x
    assert Vindex(x)[()] is x
    assert torch.equal(vindex(x, 1), x[1])


def test_vindex_rejects_non_broadcastable_indices_naming_their_shapes() -> None:
    x = torch.randn(4, 5)
    with pytest.raises(IndexError, match=r"\(2,\), \(3,\)") as info:
        Vindex(x)[torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long)]
    assert "(4, 5)" in str(info.value)
    with pytest.raises(IndexError, match=r"batch shape \(4,\)"):
        Vindex(torch.randn(4, 5))[..., torch.zeros(3, dtype=torch.long)]
    with pytest.raises(IndexError):
        pyro_indexing.Vindex(x)[torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long)]


def test_vindex_rejects_inner_ellipsis_and_nontrivial_slices() -> None:
    x = torch.randn(3, 4, 5)
    i = torch.zeros(2, dtype=torch.long)
    with pytest.raises(NotImplementedError, match="Non-leading Ellipsis"):
        Vindex(x)[i, ..., i]
    with pytest.raises(NotImplementedError, match="Nontrivial slices"):
        Vindex(x)[i, 1:3, i]
    with pytest.raises(IndexError, match="too many indices"):
        Vindex(x)[i, i, i, i]


def test_index_flattens_nested_tuples_and_merges_ellipses() -> None:
    x = torch.randn(2, 3, 4)
    assert index(x, (Ellipsis, (Ellipsis, None))).shape == (2, 3, 4, 1)
    assert torch.equal(Index(x)[..., (1, slice(None))], x[..., 1, :])
    assert torch.equal(Index(x)[1], x[1])
    assert Index(x)[()] is x
    for args in [(Ellipsis, (Ellipsis, None)), ((0,), (Ellipsis, 1)), (slice(None), (None, (Ellipsis, 2)))]:
        assert torch.equal(index(x, args), pyro_indexing.index(x, args))

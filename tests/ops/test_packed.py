"""Packed tensors: round trips, name-wise broadcasting and arithmetic, parity with pyro.ops.packed."""

from __future__ import annotations

import math
from typing import Any

import pyro.ops.packed as _pyro_packed
import pytest
import torch

from ember.ops import packed
from ember.ops._dims import dims_of, named

DIM_TO_SYMBOL = {-4: "d", -3: "c", -2: "b", -1: "a"}
SYMBOL_TO_DIM = {s: d for d, s in DIM_TO_SYMBOL.items()}

pyro_packed: Any = _pyro_packed  # pyro-ppl is untyped: the oracle's calls are unchecked


@pytest.mark.parametrize("shape", [(), (3,), (2, 1), (4, 1, 3), (2, 3, 1, 5), (1, 1, 2)])
def test_pack_then_unpack_restores_the_tensor_like_pyro(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    ours = packed.pack(x, DIM_TO_SYMBOL)
    theirs = pyro_packed.pack(x.clone(), DIM_TO_SYMBOL)
    assert dims_of(ours) == theirs._pyro_dims
    assert torch.equal(ours, theirs)
    back = packed.unpack(ours, SYMBOL_TO_DIM)
    assert not hasattr(back, "_pyro_dims")
    assert torch.equal(back, pyro_packed.unpack(theirs, SYMBOL_TO_DIM))
    assert torch.equal(back.expand(shape), x)


def test_unpack_puts_permuted_names_back_at_their_dims() -> None:
    x = named(torch.randn(3, 2), "ac")  # a is dim -1, c is dim -3
    out = packed.unpack(x, SYMBOL_TO_DIM)
    assert out.shape == (2, 1, 3)
    assert torch.equal(out[:, 0, :], x.t())
    assert packed.unpack(2.5, SYMBOL_TO_DIM) == 2.5


def test_pack_rejects_a_dim_without_a_symbol_naming_shape_and_allowed_dims() -> None:
    with pytest.raises(ValueError, match=r"Allowed dims: -2, -1[\s\S]*Actual shape: \(3, 1, 2\)"):
        packed.pack(torch.zeros(3, 1, 2), {-2: "b", -1: "a"})
    assert packed.pack(None, {}) is None and packed.pack(1.5, {}) == 1.5


def test_broadcast_all_expands_by_name_in_sorted_or_given_order() -> None:
    x = named(torch.randn(2, 3), "ba")
    y = named(torch.randn(4), "c")
    bx, by = packed.broadcast_all(x, y)
    assert dims_of(bx) == dims_of(by) == "abc"
    assert bx.shape == by.shape == (3, 2, 4)
    assert torch.equal(bx[:, :, 1], x.t()) and torch.equal(by[1, 0], y)
    (cx,) = packed.broadcast_all(x, dims="ab")
    assert torch.equal(cx, x.t())
    with pytest.raises(ValueError, match="do not match"):
        packed.broadcast_all(x, dims="abc")


def test_gather_selects_along_a_named_dim_like_pyro() -> None:
    value = named(torch.randn(3, 4, 2), "abc")
    index = named(torch.randint(4, (2, 3)), "ca")
    ours = packed.gather(value, index, "b")
    theirs = pyro_packed.gather(value, index, "b")
    assert dims_of(ours) == theirs._pyro_dims == "ac"
    assert torch.equal(ours, theirs)
    for a in range(3):
        for c in range(2):
            assert ours[a, c] == value[a, index[c, a], c]
    with pytest.raises(ValueError, match="expected dim 'z'"):
        packed.gather(value, index, "z")


def test_pointwise_ops_keep_names() -> None:
    x = named(torch.randn(2), "a")
    y = named(torch.randn(3), "b")
    xy = packed.mul(x, y)
    assert dims_of(xy) == "ab" and torch.allclose(xy, x[:, None] * y)
    assert dims_of(packed.mul(x, 2.0)) == "a" and dims_of(packed.mul(2.0, x)) == "a"
    assert packed.mul(2.0, 3.0) == 6.0
    assert dims_of(packed.neg(x)) == "a" and torch.equal(packed.neg(x), -x)
    assert dims_of(packed.exp(x)) == "a" and torch.equal(packed.exp(x), x.exp())
    assert packed.exp(0.0) == 1.0 and packed.neg(2) == -2


def test_scale_and_mask_scales_masks_and_skips_no_ops() -> None:
    t = named(torch.tensor([[1.0, float("nan")], [3.0, 4.0]]), "ab")
    mask = named(torch.tensor([True, False]), "b")
    assert packed.scale_and_mask(t) is t
    assert packed.scale_and_mask(t, torch.tensor(1)) is t
    scaled = packed.scale_and_mask(t, 2.0)
    assert dims_of(scaled) == "ab" and scaled[1, 1] == 8.0
    masked = packed.scale_and_mask(t, 2.0, mask)
    assert dims_of(masked) == "ab"
    assert masked.tolist() == [[2.0, 0.0], [6.0, 0.0]]
    assert torch.equal(packed.scale_and_mask(t, mask=mask), pyro_packed.scale_and_mask(t, mask=mask))
    assert packed.scale_and_mask(t, mask=False).abs().sum() == 0
    with pytest.raises(NotImplementedError, match="non-scalar scale"):
        packed.scale_and_mask(t, torch.ones(2))


def test_rename_equation_uses_operand_names() -> None:
    x, y = named(torch.zeros(2, 3), "ij"), named(torch.zeros(3), "j")
    assert packed.rename_equation("ab,b->a", x, y) == pyro_packed.rename_equation("ab,b->a", x, y) == "ij,j->i"
    with pytest.raises(ValueError, match="2 inputs but got 1"):
        packed.rename_equation("ab,b->a", x)


def test_sumproduct_and_logsumproductexp_equal_brute_force() -> None:
    x = named(torch.rand(2, 3), "ab")
    y = named(torch.rand(3, 4), "bc")
    expected = torch.einsum("ab,bc->ca", x, y) * 0.5
    result = packed.sumproduct([x, y, 0.5], "ca")
    assert dims_of(result) == "ca" and torch.allclose(result, expected)
    log_result = packed.logsumproductexp([named(x.log(), "ab"), named(y.log(), "bc"), math.log(0.5)], "ca")
    assert dims_of(log_result) == "ca" and torch.allclose(log_result, expected.log())
    assert packed.sumproduct([2.0, 3.0]) == 6.0
    assert dims_of(packed.sumproduct([x], "zb")) == "b"

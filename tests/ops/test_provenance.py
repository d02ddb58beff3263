"""Provenance: propagation through torch ops and containers, detaching, parity with pyro."""

from __future__ import annotations

from typing import Any

import pyro.ops.provenance as _pyro_provenance
import pytest
import torch

from ember.ops.provenance import ProvenanceTensor, detach_provenance, extract_provenance, get_provenance, track_provenance

pyro_provenance: Any = _pyro_provenance  # pyro-ppl is untyped: the oracle's calls are unchecked


def test_ops_propagate_the_union_of_input_provenance() -> None:
    a = ProvenanceTensor(torch.randn(3), frozenset({"a"}))
    b = ProvenanceTensor(torch.randn(3), frozenset({"b"}))
    c = torch.randn(3)
    assert get_provenance(a + b + c) == frozenset({"a", "b"})
    assert get_provenance(torch.stack([a, c]).sum(0).exp()) == frozenset({"a"})
    assert get_provenance(a + detach_provenance(b)) == frozenset({"a"})
    assert get_provenance(c * 2) == frozenset()
    assert torch.equal(detach_provenance(a + b), detach_provenance(a) + detach_provenance(b))
    # Same answers as pyro's implementation on the same data.
    pa = pyro_provenance.ProvenanceTensor(detach_provenance(a), frozenset({"a"}))
    pb = pyro_provenance.ProvenanceTensor(detach_provenance(b), frozenset({"b"}))
    assert pyro_provenance.get_provenance(pa + pyro_provenance.detach_provenance(pb) + c) == get_provenance(a + detach_provenance(b) + c)
    assert torch.equal(pyro_provenance.detach_provenance(pa * pb), detach_provenance(a * b))


def test_empty_provenance_and_detach_return_the_original_tensor() -> None:
    x = torch.randn(2)
    assert ProvenanceTensor(x, frozenset()) is x
    tracked = ProvenanceTensor(x, frozenset({1}))
    assert isinstance(tracked, ProvenanceTensor)
    assert detach_provenance(tracked) is x and detach_provenance(tracked) is detach_provenance(tracked)
    with pytest.raises(TypeError, match="already tracks provenance"):
        ProvenanceTensor(tracked, frozenset({2}))
    assert "Provenance" in repr(tracked)


def test_track_and_extract_walk_containers() -> None:
    data = {"x": torch.ones(2), "rest": [torch.zeros(1), 3, (torch.ones(1),)]}
    tracked = track_provenance(data, frozenset({"s"}))
    assert get_provenance(tracked["x"]) == frozenset({"s"})
    assert get_provenance(tracked["rest"][2][0]) == frozenset({"s"})
    assert tracked["rest"][1] == 3
    value, provenance = extract_provenance(tracked)
    assert provenance == frozenset({"s"})
    assert not isinstance(value["x"], ProvenanceTensor) and value["rest"][1] == 3
    more = track_provenance(tracked["x"], frozenset({"t"}))
    assert get_provenance(more) == frozenset({"s", "t"})
    as_set = track_provenance({1, 2}, frozenset({"u"}))
    assert as_set == {1, 2} and get_provenance(as_set) == frozenset()


def test_metadata_comes_back_as_torch_returns_it() -> None:
    x = torch.randn(2, 3)
    a = ProvenanceTensor(x, frozenset({"a"}))
    for shape in (a.shape, a.size(), a.T.shape, a.expand(torch.Size([4, 2, 3])).shape):
        assert type(shape) is torch.Size
    assert a.shape == x.shape and a.shape.numel() == 6 and a.T.shape == (3, 2)
    assert a.dtype is torch.float32 and a.device == x.device and a.layout is torch.strided
    assert type(a.dim()) is int and a.dim() == 2 and a.ndim == 2 and a.size(-1) == 3 and a.numel() == 6
    assert a.stride() == x.stride() and type(a.stride()) is tuple
    assert a.requires_grad is False and a.is_floating_point() is True and a.grad is None
    assert a.tolist() == x.tolist()
    # A torch.Size argument reaches torch as a torch.Size, and shape arithmetic keeps its type.
    assert type(a.reshape(a.shape).shape) is torch.Size
    assert a.new_zeros(a.shape).shape == (2, 3) and get_provenance(a.new_zeros(a.shape)) == frozenset({"a"})
    assert a.shape + (1,) == torch.Size([2, 3, 1]) and type(a.shape[1:]) is torch.Size


def _ops(t: Any, u: Any, w: torch.Tensor) -> dict[str, Any]:
    """Ops that return tensors, tuples, named tuples and tensors in keyword arguments."""
    return {
        "add": t + u,
        "stack": torch.stack([t, w]).sum(0),
        "where": torch.where(w > 0, t, w),
        "kwarg": torch.add(w, other=u),
        "out_of_untracked": w.exp(),
        "unbind": t.unbind(0),
        "max": t.max(0),
        "split": torch.split(t, 1, dim=1),
        "indexed": w[t.argmax(0)],
        "inplace_target": w.clone().mul_(u.detach()),
        "matmul": t @ u.T,
        "size": t.expand(torch.Size([2, 2, 3])).sum(0),
    }


def test_ops_propagate_as_pyros_implementation_does() -> None:
    x, y, w = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
    ours = _ops(ProvenanceTensor(x, frozenset({"x"})), ProvenanceTensor(y, frozenset({"y"})), w)
    theirs = _ops(
        pyro_provenance.ProvenanceTensor(x, frozenset({"x"})), pyro_provenance.ProvenanceTensor(y, frozenset({"y"})), w
    )
    for key, value in ours.items():
        expected = theirs[key]
        assert get_provenance(value) == pyro_provenance.get_provenance(expected), key
        assert isinstance(value, ProvenanceTensor) == isinstance(expected, pyro_provenance.ProvenanceTensor), key
        plain, _ = extract_provenance(value)
        pyro_plain = pyro_provenance.detach_provenance(expected)
        assert type(plain) is type(pyro_plain), key
        if isinstance(plain, torch.Tensor):
            assert torch.equal(plain, pyro_plain), key
        else:
            for part, other in zip(plain, pyro_plain, strict=True):
                assert torch.equal(part, other) and get_provenance(part) == frozenset(), key
    # Each tensor of a returned tuple is tracked on its own.
    assert [get_provenance(part) for part in ours["max"]] == [frozenset({"x"})] * 2


def test_containers_without_tensors_are_returned_unchanged() -> None:
    meta = {"shape": torch.Size([2]), "names": ("a", None)}
    assert track_provenance(meta, frozenset({"m"})) is meta
    assert extract_provenance(meta) == (meta, frozenset())
    nested = [torch.Size([3]), {ProvenanceTensor(torch.ones(1), frozenset({"s"}))}]
    value, provenance = extract_provenance(nested)
    assert provenance == frozenset({"s"}) and type(value[0]) is torch.Size
    assert [type(v) for v in value[1]] == [torch.Tensor]

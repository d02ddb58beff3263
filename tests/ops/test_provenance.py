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

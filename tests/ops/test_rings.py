"""Rings: sum/product/broadcast/inverse in linear and log space, memoization, inclusion-exclusion."""

from __future__ import annotations
from typing import Any

import pyro.ops.rings as _pyro_rings
import pytest
import torch

from ember.ops._dims import dims_of, named
from ember.ops.rings import BACKEND_TO_RING, LinearRing, LogRing, MapRing, MarginalRing, SampleRing

pyro_rings: Any = _pyro_rings  # pyro-ppl is untyped: the oracle's calls are unchecked


def test_linear_ring_sums_and_multiplies() -> None:
    ring = LinearRing(dim_to_size={"i": 3, "j": 2})
    x = named(torch.rand(2, 3), "ai")
    y = named(torch.rand(3, 4), "ib")
    s = ring.sumproduct([x, y], {"a"})
    assert dims_of(s) == "bi" and torch.allclose(s, torch.einsum("ai,ib->bi", x, y))
    p = ring.product(s, frozenset("ij"))
    assert dims_of(p) == "b" and torch.allclose(p, s.prod(1))
    inv = ring.inv(named(torch.tensor([2.0, 0.0]), "a"))
    assert inv[0] == 0.5 and torch.isfinite(inv[1])
    b = ring.broadcast(p, frozenset("ij"))
    assert dims_of(b) == "ijb" and b.shape == (3, 2, 4)


def test_log_ring_uses_logsumexp_and_sums_and_matches_pyro() -> None:
    ring = LogRing(dim_to_size={"i": 3})
    theirs = pyro_rings.LogRing(dim_to_size={"i": 3})
    x = named(torch.randn(2, 3), "ai")
    y = named(torch.randn(3, 4), "ib")
    s = ring.sumproduct([x, y], {"a"})
    assert dims_of(s) == "bi"
    assert torch.allclose(s, torch.logsumexp(x.t()[:, :, None] + y[:, None, :], 1).t(), atol=1e-5)
    assert torch.allclose(s, theirs.sumproduct([x, y], {"a"}), atol=1e-6)
    p = ring.product(s, frozenset("i"))
    assert torch.allclose(p, s.sum(1))
    inv = ring.inv(named(torch.tensor([1.0, -float("inf")]), "a"))
    assert inv[0] == -1.0 and torch.isfinite(inv[1])


def test_ring_results_are_memoized_per_tensor() -> None:
    ring = LogRing(dim_to_size={"i": 3})
    x = named(torch.randn(2, 3), "ai")
    assert ring.product(x, frozenset("i")) is ring.product(x, frozenset("i"))
    assert ring.inv(x) is ring.inv(x)
    y = named(torch.randn(2), "a")
    assert ring.broadcast(y, frozenset("i")) is ring.broadcast(y, frozenset("i"))
    assert ring.broadcast(y, frozenset("a")) is y
    assert ring.global_local(x, {"a"}, frozenset("i")) is ring.global_local(x, {"a"}, frozenset("i"))


@pytest.mark.parametrize("ring_type", [LinearRing, LogRing])
def test_global_local_parts_recombine_to_the_term(ring_type: type[LinearRing] | type[LogRing]) -> None:
    ring = ring_type(dim_to_size={"i": 3})
    x = named(torch.rand(2, 3) + 0.5, "ai")
    global_part, local_part = ring.global_local(x, {"a"}, frozenset("i"))
    assert dims_of(global_part) == "" and sorted(dims_of(local_part)) == ["a", "i"]
    # global * local, summed over a inside each plate slice, then multiplied over i, is global**2.
    recombined = ring.product(ring.sumproduct([local_part], {"a"}), frozenset("i"))
    unit = torch.tensor(1.0) if ring_type is LinearRing else torch.tensor(0.0)
    assert torch.allclose(recombined, unit, atol=1e-5)
    assert torch.allclose(global_part, ring.product(ring.sumproduct([x], {"a"}), frozenset("i")))
    with pytest.raises(ValueError, match="dims was empty"):
        ring.global_local(x, set(), frozenset("i"))


def test_backend_to_ring_knows_ember_and_pyro_backend_names() -> None:
    for prefix in ["ember", "pyro"]:
        assert BACKEND_TO_RING[f"{prefix}.ops.einsum.torch_log"] is LogRing
        assert BACKEND_TO_RING[f"{prefix}.ops.einsum.torch_map"] is MapRing
        assert BACKEND_TO_RING[f"{prefix}.ops.einsum.torch_sample"] is SampleRing
        assert BACKEND_TO_RING[f"{prefix}.ops.einsum.torch_marginal"] is MarginalRing
    assert BACKEND_TO_RING["torch"] is LinearRing
    assert set(BACKEND_TO_RING) >= set(pyro_rings.BACKEND_TO_RING)

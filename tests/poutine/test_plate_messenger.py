from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, cast

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime


def test_plate_records_subsample_site_first_and_frames_outermost_first() -> None:
    def m() -> None:
        with ember.plate("outer", 2):
            with ember.plate("inner", 3):
                ember.sample("x", dist.Normal(0.0, 1.0))

    tr = poutine.trace(m).get_trace()
    assert list(tr.nodes) == ["_INPUT", "outer", "inner", "x", "_RETURN"]
    assert [f.name for f in tr.nodes["x"]["cond_indep_stack"]] == ["outer", "inner"]
    assert [f.name for f in tr.nodes["inner"]["cond_indep_stack"]] == ["outer"]
    assert tr.nodes["x"]["value"].shape == (3, 2)


def test_subsample_scale_and_indices() -> None:
    data = torch.arange(10.0)

    def m() -> Any:
        with ember.plate("data", 10, subsample_size=4) as idx:
            batch = ember.subsample(data, event_dim=0)
            ember.sample("obs", dist.Normal(0.0, 1.0), obs=batch)
        return idx, batch

    tr = poutine.trace(m).get_trace()
    idx, batch = tr.nodes["_RETURN"]["value"]
    assert torch.equal(batch, data[idx]) and len(idx) == 4
    assert tr.nodes["obs"]["scale"] == 2.5
    with poutine.scale(scale=2.0), ember.plate("p", 10, subsample_size=5):
        assert runtime._inspect()["scale"] == 4.0


def test_explicit_subsample_and_mismatch_error() -> None:
    with ember.plate("p", 10, subsample=torch.tensor([1, 3])) as idx:
        assert torch.equal(idx, torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="subsample_size does not match len\\(subsample\\), 3 vs 2"):
        ember.plate("p", 10, subsample_size=3, subsample=torch.tensor([1, 3]))


def test_param_with_event_dim_is_subsampled() -> None:
    def m() -> torch.Tensor:
        with ember.plate("N", 10, subsample_size=3):
            return ember.param("pp", torch.arange(10.0), event_dim=0)

    outer = poutine.trace(m).get_trace()
    assert outer.nodes["pp"]["value"].shape == (10,)
    assert outer.nodes["_RETURN"]["value"].shape == (3,)
    constrained: Any = ember.get_param_store()["pp"]
    leaf = constrained.unconstrained()
    assert set(leaf._pyro_subsample) == {-1}


def test_param_with_wrong_shape_in_plate() -> None:
    def m() -> None:
        with ember.plate("N", 10, dim=-1):
            ember.param("bad", torch.zeros(4), event_dim=0)

    with pytest.raises(ValueError, match=r"Inside pyro.plate\(N, 10, dim=-1\) invalid shape of pyro.param\(bad, ..., event_dim=0\): torch.Size\(\[4\]\)"):
        m()
    assert runtime.get_stack() == () and runtime._DIM_ALLOCATOR._stack == []


def test_sequential_plate_counters_and_values() -> None:
    seen: list[tuple[Any, int | None, int]] = []
    for i in ember.plate("s", 3):
        (frame,) = runtime.get_plates()
        seen.append((i, frame.dim, frame.counter))
    assert seen == [(0, None, 1), (1, None, 2), (2, None, 3)]
    p = ember.plate("q", 2)
    with p:
        pass
    with pytest.raises(ValueError, match="cannot use plate q as both vectorized and non-vectorizedindependence context"):
        list(p)


def test_plate_size_zero_and_unknown_size() -> None:
    with pytest.raises(ZeroDivisionError, match="size cannot be zero"):
        ember.plate("z", 0)
    with ember.plate("free") as idx:
        assert cast(object, idx) is None  # typed as the indices; a plate of unknown size has none
        x = ember.sample("x", dist.Normal(torch.zeros(4), 1.0))
    assert x.shape == (4,)


def test_broadcast_shape_mismatch_names_site_and_plates() -> None:
    with pytest.raises(ValueError, match="Shape mismatch inside plate\\('k'\\) at site bad dim -1, 3 vs 4") as info:
        with ember.plate("k", 3):
            ember.sample("bad", dist.Normal(torch.zeros(4), 1.0))
    assert "k(size=3, dim=-1)" in str(info.value)
    assert runtime._DIM_ALLOCATOR._stack == []


def test_plate_preserves_custom_has_rsample() -> None:
    with ember.plate("p", 2), poutine.trace() as tracer:
        ember.sample("x", dist.Normal(0.0, 1.0).has_rsample_(False))
    fn: Any = tracer.trace.nodes["x"]["fn"]
    assert fn.has_rsample is False


def test_plate_stack_and_block_plate() -> None:
    with ember.plate_stack("ps", (2, 3, 4)):
        names = [(f.name, f.dim, f.size) for f in runtime.get_plates()]
        x = ember.sample("x", dist.Normal(0.0, 1.0))
    assert sorted(names) == [("ps_0", -1, 4), ("ps_1", -2, 3), ("ps_2", -3, 2)]
    assert x.shape == (2, 3, 4)
    with ember.plate("data", 3):
        with poutine.block_plate("data"):
            assert runtime.get_plates() == ()
            assert ember.sample("y", dist.Normal(0.0, 1.0)).shape == ()
        with pytest.raises(ValueError, match="block_plate matched 0 messengers"):
            with poutine.block_plate("nope"):
                pass
    with pytest.raises(ValueError, match="Exactly one of name,dim must be specified"):
        with poutine.block_plate():
            pass


def test_indep_messenger_and_broadcast_handler() -> None:
    def m() -> torch.Tensor:
        with poutine.IndepMessenger("i", 3, dim=-1):
            x: torch.Tensor = ember.sample("x", dist.Normal(0.0, 1.0))
        return x

    assert m().shape == ()
    assert poutine.broadcast(m)().shape == (3,)


def _cyclic_garbage(fn: Callable[[], object]) -> list[str]:
    """Type names of the objects that only the cycle collector would free after ``fn()``."""
    fn()
    gc.collect()
    gc.disable()
    try:
        fn()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
    finally:
        gc.set_debug(0)
        gc.enable()
    garbage = [type(o).__name__ for o in gc.garbage]
    gc.garbage.clear()
    return garbage


def test_finished_plates_and_traces_are_freed_without_the_cycle_collector() -> None:
    big = torch.zeros(1000)

    def model() -> None:
        a = ember.sample("a", dist.Normal(0.0, 1.0))
        with ember.plate("outer", 3, dim=-2), ember.plate("inner", 1000, subsample_size=10):
            ember.sample("y", dist.Normal(a + big[:10], 1.0))

    # Reference cycles would keep the sites' tensors alive until a GC pass (pyro-ppl has none).
    assert _cyclic_garbage(model) == []
    assert _cyclic_garbage(lambda: poutine.trace(model).get_trace()) == []
    assert _cyclic_garbage(lambda: poutine.condition(model, {"a": torch.tensor(1.0)})()) == []

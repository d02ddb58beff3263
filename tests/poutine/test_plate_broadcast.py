"""Nested plates broadcast a site's distribution once, with the traces, shapes and errors of
one broadcast per plate (and of pyro-ppl)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro
import pyro.distributions
import pyro.poutine
import pytest
import torch

import ember
import ember.distributions as dist
import ember.poutine
from ember.poutine.messenger import Messenger
from ember.poutine.trace_struct import Trace


def _nested(lib: Any, d: Any, between: Callable[[], Any] | None = None) -> Callable[[], None]:
    def model() -> None:
        with lib.plate("a", 2, dim=-1), lib.plate("b", 3, dim=-3):
            with between() if between is not None else lib.plate("c", 4, dim=-2):
                with lib.plate("d", 5, dim=-4):
                    lib.sample("x", d.Normal(torch.zeros(4, 1), 1.0))
                    lib.sample("y", d.Normal(0.0, 1.0).expand([2]).to_event(0), obs=torch.zeros(5, 3, 4, 2))
                    lib.sample("z", d.Bernoulli(0.3))

    return model


def _summary(tr: Any) -> list[tuple[str, str, tuple[int, ...], tuple[int, ...], list[str]]]:
    tr.compute_log_prob()
    return [
        (name, type(site["fn"]).__name__, tuple(site["fn"].batch_shape), tuple(site["log_prob"].shape), [f.name for f in site["cond_indep_stack"]])
        for name, site in tr.nodes.items()
        if site["type"] == "sample" and name in "xyz"
    ]


def test_four_nested_plates_give_pyros_trace_and_shapes() -> None:
    torch.manual_seed(0)
    ours = ember.poutine.trace(_nested(ember, dist)).get_trace()
    torch.manual_seed(0)
    theirs = pyro.poutine.trace(_nested(pyro, pyro.distributions)).get_trace()
    assert _summary(ours) == _summary(theirs)
    for name in "xz":
        value, expected = ours.nodes[name]["value"], theirs.nodes[name]["value"]
        assert isinstance(value, torch.Tensor) and isinstance(expected, torch.Tensor)
        assert torch.equal(value, expected)
    assert ours.format_shapes() == theirs.format_shapes()


def test_four_nested_plates_expand_a_site_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    original = dist.Normal.expand

    def counting(self: Any, batch_shape: Any, _instance: Any = None) -> Any:
        calls.append(tuple(batch_shape))
        return original(self, batch_shape, _instance)

    monkeypatch.setattr(dist.Normal, "expand", counting)

    def model() -> None:
        with ember.plate("a", 2, dim=-1), ember.plate("b", 3, dim=-2), ember.plate("c", 4, dim=-3), ember.plate("d", 5, dim=-4):
            ember.sample("x", dist.Normal(0.0, 1.0))

    trace = ember.poutine.trace(model).get_trace()
    assert trace.nodes["x"]["value"].shape == (5, 4, 3, 2)
    assert calls == [(5, 4, 3, 2)]


class _Spy(Messenger):
    """A handler between two plates that records the batch shape it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def _pyro_sample(self, msg: Any) -> None:
        if msg["name"] == "x":
            self.seen.append(tuple(msg["fn"].batch_shape))


def test_a_handler_between_plates_sees_the_inner_plates_broadcast() -> None:
    spy = _Spy()

    def between() -> Any:
        return spy

    tr = ember.poutine.trace(_nested(ember, dist, between)).get_trace()
    # Inside the spy: plates d (dim -4) and the site's own (4, 1) shape; outside: a and b too.
    assert spy.seen == [(5, 1, 4, 1)]
    assert tr.nodes["x"]["fn"].batch_shape == (5, 3, 4, 2)


def test_a_shape_mismatch_names_the_plate_as_before() -> None:
    def model() -> None:
        with ember.plate("outer", 3, dim=-2), ember.plate("inner", 2, dim=-1):
            ember.sample("x", dist.Normal(torch.zeros(4), 1.0))

    with pytest.raises(ValueError, match=r"Shape mismatch inside plate\('inner'\) at site x dim -1, 2 vs 4"):
        ember.poutine.trace(model).get_trace()
    assert ember.poutine.runtime.get_stack() == ()


def test_plate_indices_are_shared_per_size_and_device_but_a_subsample_is_fresh() -> None:
    with ember.plate("p", 7) as first:
        pass
    with ember.plate("q", 7) as second:
        pass
    assert first is second and torch.equal(first, torch.arange(7))
    with ember.plate("r", 7, device="meta") as meta:
        assert meta.device.type == "meta"
    with ember.plate("s", 7, subsample_size=3) as sub:
        assert sub.shape == (3,) and sub is not first


def test_traces_are_the_same_with_a_block_plate_between() -> None:
    def model() -> None:
        with ember.plate("a", 2, dim=-1), ember.plate("b", 3, dim=-2):
            with ember.poutine.plate_messenger.block_plate("a"):
                ember.sample("x", dist.Normal(0.0, 1.0))
            ember.sample("y", dist.Normal(0.0, 1.0))

    tr: Trace = ember.poutine.trace(model).get_trace()
    assert tr.nodes["x"]["fn"].batch_shape == (3, 1)
    assert tr.nodes["y"]["fn"].batch_shape == (3, 2)

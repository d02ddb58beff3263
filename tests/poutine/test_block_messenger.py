from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.message import Message


def model() -> None:
    ember.param("p", torch.tensor(1.0))
    ember.sample("a", dist.Normal(0.0, 1.0))
    ember.sample("b", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))


def visible(**kwargs: Any) -> list[str]:
    return list(poutine.trace(poutine.block(model, **kwargs)).get_trace().nodes)[1:-1]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, []),
        ({"hide": ["a"]}, ["p", "b"]),
        ({"expose": ["a"]}, ["a"]),
        ({"hide_types": ["observe"]}, ["p", "a"]),
        ({"expose_types": ["sample"]}, ["a"]),
        ({"hide_all": False}, ["p", "a", "b"]),
        ({"hide_fn": lambda m: m["type"] == "param"}, ["a", "b"]),
        ({"expose_fn": lambda m: m["name"] == "b"}, ["b"]),
    ],
)
def test_block_decision_table(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert visible(**kwargs) == expected


def test_block_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Only specify one of hide_fn or expose_fn"):
        poutine.block(hide_fn=lambda m: True, expose_fn=lambda m: True)
    with pytest.raises(AssertionError, match="cannot hide and expose a site"):
        poutine.block(expose_all=True)
    with pytest.raises(AssertionError, match="cannot hide and expose a site"):
        poutine.block(hide=["a"], expose=["a"])


def test_block_three_forms() -> None:
    with poutine.trace() as tracer:
        with poutine.block(hide=["a"]):
            model()
    assert list(tracer.trace.nodes) == ["p", "b"]

    @poutine.block(expose=["a"])
    def decorated() -> None:
        model()

    assert list(poutine.trace(decorated).get_trace().nodes) == ["_INPUT", "a", "_RETURN"]


def test_blocked_site_still_runs_inner_handlers() -> None:
    def m() -> Any:
        return ember.sample("a", dist.Normal(0.0, 1.0))

    inner = poutine.trace(m)
    outer = poutine.trace(poutine.block(inner))
    outer.get_trace()
    assert "a" in inner.msngr.trace and "a" not in outer.msngr.trace


def test_hide_fn_result_coerced_to_bool() -> None:
    seen: list[Message] = []

    def hide(msg: Message) -> Any:
        seen.append(msg)
        return None

    assert list(poutine.trace(poutine.block(model, hide_fn=hide)).get_trace().nodes)[1:-1] == ["p", "a", "b"]
    assert len(seen) == 3

"""The claims of docs/tutorials/typed_models.md, checked by mypy --strict (and run by pytest).

Each ``assert_type`` is a ``reveal_type`` line of the page; each expected error is a
``type: ignore[code]`` that mypy (``warn_unused_ignores`` under ``--strict``) reports as
unused the day the error goes away, so the page cannot drift from what mypy says.
"""

from __future__ import annotations

import pytest
import torch
from typing_extensions import assert_type

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.scale_messenger import ScaleMessenger
from ember.poutine.trace_messenger import TraceMessenger
from ember.poutine.trace_struct import Trace


def model(data: torch.Tensor) -> torch.Tensor:
    loc = ember.sample("loc", dist.Normal(0.0, 10.0))
    with ember.plate("data", len(data)):
        ember.sample("obs", dist.Normal(loc, 1.0), obs=data)
    return loc


class Tempered(Messenger):
    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def _pyro_sample(self, msg: Message) -> None:
        msg["scale"] = msg["scale"] / self.temperature


def test_revealed_types_of_model_and_handlers_are_the_pages() -> None:
    conditioned = poutine.condition(model, data={"loc": torch.tensor(1.0)})
    assert_type(ember.sample("x", dist.Normal(0.0, 1.0)), torch.Tensor)
    # The wrapped function keeps its parameter names: calling by keyword type-checks.
    assert_type(conditioned(data=torch.zeros(3)), torch.Tensor)
    tr = poutine.trace(conditioned).get_trace(torch.zeros(3))
    assert_type(tr, Trace)
    assert_type(poutine.scale(scale=2.0), ScaleMessenger)
    assert_type(ember.param("w", torch.zeros(2)), torch.Tensor)
    with ember.plate("p", 3) as idx:
        assert_type(idx, torch.Tensor)
    assert isinstance(tr, Trace) and isinstance(poutine.scale(scale=2.0), ScaleMessenger)
    assert torch.equal(idx, torch.arange(3))
    assert conditioned(torch.zeros(3)).item() == 1.0


def test_tempered_stack_types_and_scale_are_the_pages() -> None:
    with poutine.trace() as tracer, Tempered(2.0) as tempered:
        assert_type(tracer, TraceMessenger)
        assert_type(tempered, Tempered)
        model(torch.zeros(3))
    assert_type(tracer.trace, Trace)
    assert tracer.trace.nodes["obs"]["scale"] == 0.5


def test_the_pages_mistakes_are_type_errors_that_run_time_catches_late_or_never() -> None:
    conditioned = poutine.condition(model, data={"loc": torch.tensor(1.0)})
    with pytest.raises(TypeError, match="sample site 'y' expects a distribution, got 3.0"):
        ember.sample("y", 3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'>' not supported"):
        poutine.scale(model, scale="2")(torch.zeros(3))  # type: ignore[call-overload]
    # These two run: a list of data conditions nothing, a string is "observed" as is.
    unconditioned = poutine.condition(model, data=[1.0])  # type: ignore[call-overload]
    tr = poutine.trace(unconditioned).get_trace(torch.zeros(3))
    assert not tr.nodes["loc"]["is_observed"]
    assert conditioned("not a tensor").item() == 1.0  # type: ignore[arg-type]

    def bad(data: torch.Tensor) -> int:
        return ember.sample("z", dist.Normal(0.0, 1.0))  # type: ignore[return-value]

    assert isinstance(bad(torch.zeros(1)), torch.Tensor)
    msg: Message = poutine.trace(model).get_trace(torch.zeros(3)).nodes["loc"]
    msg["sacle"] = 1.0  # type: ignore[typeddict-unknown-key]
    msg["is_observed"] = "yes"  # type: ignore[typeddict-item]
    assert msg["scale"] == 1.0

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.handlers import Handler
from ember.poutine.scale_messenger import ScaleMessenger


def model(loc: float = 0.0) -> Any:
    with ember.plate("data", 2):
        return ember.sample("x", dist.Normal(loc, 1.0))


def test_handler_returns_messenger_without_fn() -> None:
    m = poutine.scale(scale=2.0)
    assert isinstance(m, ScaleMessenger) and m.scale == 2.0


def test_handler_wraps_fn_and_accepts_second_positional() -> None:
    wrapped = poutine.scale(model, 3.0)
    tr = poutine.trace(wrapped).get_trace(1.0)
    assert tr.nodes["x"]["scale"] == 3.0 and tr.nodes["_INPUT"]["args"] == (1.0,)
    assert wrapped.__name__ == "model" and wrapped.__wrapped__ is model  # type: ignore[attr-defined]


def test_handler_rejects_non_callable_first_argument() -> None:
    with pytest.raises(ValueError, match="False is not callable, did you mean to pass it as a keyword arg"):
        poutine.mask(False)  # type: ignore[call-overload]  # deliberately wrong
    with pytest.raises(TypeError):
        poutine.condition({"a": 1})  # type: ignore[call-overload]  # a dict is iterable: taken as fn, data missing


@pytest.mark.parametrize(
    "make",
    [
        lambda: poutine.block(model, hide=["x"]),
        lambda: poutine.condition(model, data={"x": torch.zeros(2)}),
        lambda: poutine.scale(model, scale=2.0),
        lambda: poutine.mask(model, mask=False),
        lambda: poutine.uncondition(model),
        lambda: poutine.substitute(model, data={}),
        lambda: poutine.seed(model, rng_seed=0),
        lambda: poutine.broadcast(model),
    ],
)
def test_wrapped_models_survive_torch_save(make: Any) -> None:
    wrapped = make()
    buf = io.BytesIO()
    torch.save(wrapped, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buf.seek(0)
    restored = torch.load(buf, weights_only=False)
    assert poutine.unwrap(restored) is model
    torch.manual_seed(1)
    expected = wrapped()
    torch.manual_seed(1)
    assert torch.equal(restored(), expected)


def test_replay_with_trace_pickles() -> None:
    tr = poutine.trace(model).get_trace()
    wrapped = poutine.replay(model, trace=tr)
    restored = pickle.loads(pickle.dumps(wrapped, protocol=pickle.HIGHEST_PROTOCOL))
    assert torch.equal(restored(), tr.nodes["x"]["value"])


def test_trace_commutes_with_condition_and_nested_handlers_idempotent() -> None:
    data = {"x": torch.ones(2)}
    a = poutine.trace(poutine.condition(model, data=data)).get_trace()
    cond_tr = poutine.trace(model)
    poutine.condition(cond_tr, data=data)()
    assert list(a.nodes) == list(cond_tr.msngr.trace.nodes)
    assert torch.equal(a.nodes["x"]["value"], cond_tr.msngr.trace.nodes["x"]["value"])
    twice = poutine.trace(poutine.block(poutine.block(model))).get_trace()
    once = poutine.trace(poutine.block(model)).get_trace()
    assert list(twice.nodes) == list(once.nodes) == ["_INPUT", "_RETURN"]


def test_recursive_call_of_one_wrapper_is_an_error() -> None:
    @poutine.scale(scale=2.0)
    def recurse(n: int) -> int:
        return 0 if n == 0 else recurse(n - 1)

    with pytest.raises(ValueError, match="cannot install a Messenger instance twice"):
        recurse(2)


def test_custom_handler_from_factory() -> None:
    double = Handler(ScaleMessenger, "double")
    assert repr(double) == "<handler double(fn, scale)>"
    assert poutine.trace(double(model, scale=2.0)).get_trace().nodes["x"]["scale"] == 2.0

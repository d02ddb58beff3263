"""Static checks (mypy --strict) of do, equalize, infer_config, escape and queue in all forms.

The functions also run under pytest, so the runtime objects match the static types.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from typing_extensions import assert_type

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.message import InferDict, Message
from ember.poutine.queue import QueueDecorator, QueueHandler
from ember.poutine.runtime import NonlocalExit
from ember.poutine.trace_struct import Trace


def model(x: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    value: torch.Tensor = ember.sample("z", dist.Normal(x, scale))
    return value


def coin(p: float) -> torch.Tensor:
    value: torch.Tensor = ember.sample("c", dist.Bernoulli(p))
    return value


def config_fn(msg: Message) -> InferDict:
    return {"enumerate": "sequential"}


def never(msg: Message) -> bool:
    return False


class ListQueue:
    def __init__(self) -> None:
        self.items: list[Trace] = [Trace()]

    def empty(self) -> bool:
        return not self.items

    def get(self) -> Trace:
        return self.items.pop(0)

    def put(self, item: Trace, /) -> None:
        self.items.append(item)


X = torch.tensor(0.0)


def test_wrapping_keeps_the_model_signature() -> None:
    Wrapped = Callable[[torch.Tensor], torch.Tensor]
    assert_type(poutine.do(model, data={"z": X})(X, scale=2.0), torch.Tensor)
    assert_type(poutine.do(model, {"z": 1})(X), torch.Tensor)
    assert_type(poutine.equalize(model, "z")(X), torch.Tensor)
    assert_type(poutine.equalize(model, ["z", "w"], type="param", keep_dist=True)(X), torch.Tensor)
    assert_type(poutine.infer_config(model, config_fn)(X, scale=3.0), torch.Tensor)
    escaped: Wrapped = poutine.escape(model, escape_fn=never)
    assert escaped(X).shape == ()
    enumerated = poutine.queue(coin, queue=ListQueue(), num_samples=3)
    as_callable: Callable[[float], torch.Tensor] = enumerated
    assert isinstance(enumerated, QueueHandler) and as_callable is enumerated
    assert_type(enumerated(0.5), torch.Tensor)


def test_messenger_forms() -> None:
    assert_type(poutine.do(data={"z": X}), poutine.DoMessenger)
    assert_type(poutine.equalize(sites="z"), poutine.EqualizeMessenger)
    assert_type(poutine.infer_config(config_fn=config_fn), poutine.InferConfigMessenger)
    assert_type(poutine.escape(escape_fn=never), poutine.EscapeMessenger)
    with poutine.do(data={"z": X}), poutine.equalize(sites="z"), poutine.infer_config(config_fn=config_fn):
        with poutine.escape(escape_fn=never):
            assert_type(model(X), torch.Tensor)

    @poutine.do(data={"z": 2.0})
    def decorated(y: int) -> str:
        return str(y)

    assert_type(decorated(1), str)
    decorator = poutine.queue(queue=ListQueue(), num_samples=3)
    assert_type(decorator, QueueDecorator)

    @poutine.queue(queue=ListQueue(), num_samples=3)
    def flip(p: float) -> torch.Tensor:
        return coin(p)

    assert_type(flip(0.5), torch.Tensor)


class Model:
    @poutine.queue(queue=ListQueue(), num_samples=3)
    def flip(self, p: float) -> torch.Tensor:
        return coin(p)


def test_method_forms() -> None:
    assert_type(Model().flip(0.5), torch.Tensor)
    assert_type(NonlocalExit(ember.poutine.message.new_message("sample", "x", coin)).site, Message)


def test_wrong_argument_types_are_static_errors() -> None:
    # Each line below would fail mypy without its ignore; warn_unused_ignores proves it.
    bad: Any = None
    try:
        poutine.do(model, data=["z"])  # type: ignore[call-overload]
    except Exception:
        pass
    try:
        poutine.equalize(model, sites=3)  # type: ignore[call-overload]
    except TypeError:
        pass
    try:
        poutine.queue(coin, queue=[Trace()])  # type: ignore[call-overload]
    except TypeError:
        pass
    try:
        poutine.queue(coin, queue=ListQueue())("heads")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    del bad

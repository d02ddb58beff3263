from __future__ import annotations

import pickle
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger, block_messengers, unwrap
from ember.poutine.reentrant_messenger import ReentrantMessenger


def model(x: float = 1.0) -> Any:
    return ember.sample("z", dist.Normal(x, 1.0))


def test_exception_at_any_depth_restores_stack() -> None:
    with pytest.raises(RuntimeError):
        with Messenger():
            with Messenger():
                with Messenger():
                    raise RuntimeError("boom")
    assert runtime.get_stack() == ()
    outer = Messenger()
    with outer:
        with pytest.raises(KeyError):
            with Messenger(), Messenger():
                raise KeyError("x")
        assert runtime.get_stack() == (outer,)


def test_installing_one_instance_twice_is_an_error_and_cleans_up() -> None:
    m = Messenger()
    with pytest.raises(ValueError, match="cannot install a Messenger instance twice"):
        with m:
            with m:
                pass
    assert runtime.get_stack() == ()


def test_exit_out_of_order_is_an_error() -> None:
    a, b = Messenger(), Messenger()
    a.__enter__()
    b.__enter__()
    with pytest.raises(ValueError, match="not on the bottom of the stack"):
        a.__exit__(None, None, None)
    b.__exit__(None, None, None)
    a.__exit__(None, None, None)
    assert runtime.get_stack() == ()


def test_call_rejects_non_callables() -> None:
    with pytest.raises(ValueError, match="is not callable, did you mean to pass it as a keyword arg"):
        Messenger()(3)  # type: ignore[arg-type]  # deliberately wrong


def test_wrapper_keeps_metadata_unwraps_and_pickles() -> None:
    wrapped = poutine.block(model)
    assert wrapped.__name__ == "model" and unwrap(wrapped) is model
    assert unwrap(poutine.condition(poutine.block(model), data={})) is model
    restored = pickle.loads(pickle.dumps(wrapped))
    assert unwrap(restored) is model
    assert restored().shape == ()


class Holder:
    def __init__(self) -> None:
        self.loc = 3.0

    @poutine.condition(data={"z": torch.tensor(5.0)})
    def method(self) -> Any:
        return ember.sample("z", dist.Normal(self.loc, 1.0))


def test_method_decorator_binds_self() -> None:
    assert Holder().method() == 5.0


def test_hook_tables_are_built_per_class_and_follow_register() -> None:
    calls: list[str] = []

    class Custom(Messenger):
        def _pyro_sample(self, msg: Message) -> None:
            calls.append("sample")

    class Sub(Custom):
        pass

    assert set(Custom._process_hooks) == {"sample"} and Sub._process_table is not None

    def on_foo(msg: Message) -> None:
        calls.append("foo " + str(msg["name"]))

    Custom.register(on_foo, type="foo")
    op = runtime.effectful(lambda: 1, type="foo")
    with Sub():
        op(name="a")
    Custom.register(type="foo", post=True)(lambda msg: calls.append("post foo"))
    with Custom():
        op(name="b")
    Custom.unregister(type="foo")
    with Custom():
        op(name="c")
    assert calls == ["foo a", "foo b", "post foo"]
    with pytest.raises(ValueError, match="An operation type name must be provided"):
        Custom.register(on_foo)


def test_overriding_process_message_sees_every_type() -> None:
    seen: list[str] = []

    class All(Messenger):
        def _process_message(self, msg: Message) -> None:
            seen.append(msg["type"])

    assert All._process_table is None
    with All():
        ember.param("p", torch.tensor(1.0))
        ember.sample("s", dist.Normal(0.0, 1.0))
        runtime.get_mask()
    assert seen == ["param", "sample", "inspect"]


def test_reentrant_messenger_installs_once() -> None:
    r = ReentrantMessenger()
    with r:
        with r:
            assert runtime.get_stack() == (r,) and r._ref_count == 2
    assert runtime.get_stack() == ()

    @r
    def countdown(n: int) -> int:
        assert runtime.get_stack() == (r,)
        return 0 if n == 0 else countdown(n - 1)

    assert countdown(3) == 0


def test_block_messengers_replaces_and_restores() -> None:
    tracer = poutine.trace()
    with tracer:
        with block_messengers(lambda m: isinstance(m, poutine.TraceMessenger)) as blocked:
            assert blocked == [tracer]
            ember.sample("hidden", dist.Normal(0.0, 1.0))
        ember.sample("seen", dist.Normal(0.0, 1.0))
    assert list(tracer.trace.nodes) == ["seen"]

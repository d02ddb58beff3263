from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import _handler_state, runtime
from ember.poutine.message import Message, new_message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import _DIM_ALLOCATOR, _ENUM_ALLOCATOR, NonlocalExit, apply_stack, effectful


class Log(Messenger):
    """Records the order of hook calls; optionally stops messages."""

    def __init__(self, name: str, calls: list[str], stop: bool = False) -> None:
        super().__init__()
        self.name = name
        self.calls = calls
        self.stop = stop

    def _pyro_sample(self, msg: Message) -> None:
        self.calls.append(f"proc {self.name}")
        if self.stop:
            msg["stop"] = True

    def _pyro_post_sample(self, msg: Message) -> None:
        self.calls.append(f"post {self.name}")


def test_apply_stack_processes_inner_to_outer_and_postprocesses_in_reverse() -> None:
    calls: list[str] = []
    with Log("outer", calls), Log("middle", calls), Log("inner", calls):
        ember.sample("x", dist.Normal(0.0, 1.0))
    assert calls == ["proc inner", "proc middle", "proc outer", "post outer", "post middle", "post inner"]


def test_stop_hides_message_from_outer_frames_but_inner_frames_postprocess() -> None:
    calls: list[str] = []
    with Log("outer", calls), Log("middle", calls, stop=True), Log("inner", calls):
        ember.sample("x", dist.Normal(0.0, 1.0))
    assert calls == ["proc inner", "proc middle", "post middle", "post inner"]


def test_default_process_message_skips_fn_when_value_known() -> None:
    called = []
    msg = new_message("t", "n", lambda: called.append(1), value=3)
    runtime.default_process_message(msg)
    assert called == [] and msg["done"] and msg["value"] == 3
    msg = new_message("t", "n", lambda: 5)
    runtime.default_process_message(msg)
    assert msg["value"] == 5 and msg["done"]


def test_continuation_runs_after_postprocess() -> None:
    calls: list[str] = []

    class SetContinuation(Messenger):
        def _pyro_sample(self, msg: Message) -> None:
            msg["continuation"] = lambda m: calls.append("continuation")

    with Log("outer", calls), SetContinuation():
        ember.sample("x", dist.Normal(0.0, 1.0))
    assert calls == ["proc outer", "post outer", "continuation"]


def test_apply_stack_with_empty_stack_runs_default() -> None:
    msg = new_message("t", "n", lambda: 7)
    apply_stack(msg)
    assert msg["value"] == 7 and msg["done"]


def test_effectful_wraps_and_hides_name_infer_obs() -> None:
    seen: list[Message] = []

    def add(a: int, b: int) -> int:
        return a + b

    op = effectful(add, type="add")
    assert op(1, 2, name="n") == 3  # unwrapped: no message

    class Spy(Messenger):
        def _pyro_add(self, msg: Message) -> None:
            seen.append(msg)

    with Spy():
        assert op(1, 2, name="n") == 3
        assert op(1, 2, name="m", obs=10) == 10
    assert [m["name"] for m in seen] == ["n", "m"]
    assert seen[0]["args"] == (1, 2) and seen[0]["kwargs"] == {} and seen[0]["type"] == "add"
    assert seen[1]["is_observed"] is True
    assert effectful(op, type="other") is op


def test_effectful_as_decorator_and_type_required() -> None:
    @effectful(type="double")
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8
    with pytest.raises(AssertionError, match="must provide a type label"):
        effectful(lambda: None)
    with pytest.raises(AssertionError, match="cannot use 'message'"):
        effectful(lambda: None, type="message")


def test_custom_message_types_are_not_traced() -> None:
    op = effectful(lambda x: x, type="custom")

    def model() -> Any:
        return op(1, name="f")

    assert list(poutine.trace(model).get_trace().nodes) == ["_INPUT", "_RETURN"]


def test_am_i_wrapped_get_mask_get_plates() -> None:
    assert not runtime.am_i_wrapped()
    assert runtime.get_mask() is None
    with poutine.mask(mask=True):
        assert runtime.am_i_wrapped()
        assert runtime.get_mask() is True
    m = torch.tensor([True, False, True])
    with poutine.mask(mask=m), poutine.mask(mask=False):
        assert torch.equal(runtime.get_mask(), torch.tensor([False, False, False]))  # type: ignore[arg-type]  # a tensor here
    with ember.plate("a", 3), ember.plate("b", 4):
        plates = runtime.get_plates()
    assert [(f.name, f.dim, f.size, f.counter, f.full_size) for f in plates] == [
        ("a", -1, 3, 0, 3),
        ("b", -2, 4, 0, 4),
    ]


def test_pyro_stack_compatibility_view() -> None:
    assert runtime._PYRO_STACK == []
    with poutine.block() as b:
        assert runtime._PYRO_STACK == [b]


def test_dim_allocator_errors_leave_it_empty() -> None:
    with pytest.raises(ValueError, match="duplicate plate 'a'"):
        with ember.plate("a", 2), ember.plate("a", 3):
            pass
    assert _DIM_ALLOCATOR._stack == []
    with pytest.raises(ValueError, match="Expected dim < 0 to index from the right, actual 0"):
        with ember.plate("a", 2, dim=0):
            pass
    with pytest.raises(ValueError) as info:
        with ember.plate("a", 2, dim=-1), ember.plate("b", 3, dim=-1):
            pass
    assert str(info.value) == 'at plates "b" and "a", collide at dim=-1\n\nTry moving the dim of one plate to the left, e.g. dim=-2'
    assert _DIM_ALLOCATOR._stack == [] and runtime.get_stack() == ()


def test_dim_allocator_fills_gaps_from_the_right() -> None:
    with ember.plate("n", 2, dim=-3), ember.plate("m", 5):
        assert _DIM_ALLOCATOR._stack == ["m", None, "n"]
        x = ember.sample("x", dist.Normal(0.0, 1.0))
    assert x.shape == (2, 1, 5)


def test_enum_allocator_persists_until_reset() -> None:
    _ENUM_ALLOCATOR.set_first_available_dim(-2)
    assert _ENUM_ALLOCATOR.allocate() == (-2, 0)
    assert _ENUM_ALLOCATOR.allocate({-3}) == (-4, 1)
    assert _ENUM_ALLOCATOR.allocate() == (-3, 2)
    assert _ENUM_ALLOCATOR.dim_to_id == {-2: 0, -3: 2}
    _ENUM_ALLOCATOR.set_first_available_dim(-1)
    assert _ENUM_ALLOCATOR.dim_to_id == {} and _ENUM_ALLOCATOR.next_available_id == 0


def test_nonlocal_exit_reset_stack_stops_at_blocking_messenger() -> None:
    resets: list[str] = []

    class Resettable(Messenger):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def _reset(self) -> None:
            resets.append(self.name)

    site = new_message("sample", "x", lambda: 0)
    with Resettable("outer"), poutine.block(hide=["x"]), Resettable("inner"):
        NonlocalExit(site).reset_stack()
    assert resets == ["inner"]


def _model_in_handlers(name: str, results: dict[str, Any], barrier: threading.Barrier | None) -> None:
    with poutine.trace() as tracer, poutine.condition(data={name: torch.tensor(1.0)}), ember.plate(name + "_plate", 2):
        if barrier is not None:
            barrier.wait()
        ember.sample(name, dist.Normal(0.0, 1.0))
        results[name] = (list(tracer.trace.nodes), len(runtime.get_stack()), runtime._DIM_ALLOCATOR._stack)
        if barrier is not None:
            barrier.wait()


def test_threads_each_see_only_their_own_handlers() -> None:
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2, timeout=60)  # a failing thread breaks the barrier instead of hanging
    threads = [threading.Thread(target=_model_in_handlers, args=(n, results, barrier)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"] == (["a_plate", "a"], 3, ["a_plate"])
    assert results["b"] == (["b_plate", "b"], 3, ["b_plate"])
    assert runtime.get_stack() == ()


def test_asyncio_tasks_each_see_only_their_own_handlers() -> None:
    results: dict[str, Any] = {}

    async def task(name: str, other_started: asyncio.Event, started: asyncio.Event) -> None:
        with poutine.trace() as tracer, poutine.scale(scale=2.0 if name == "a" else 3.0):
            started.set()
            await other_started.wait()  # both tasks are inside their handlers now
            ember.sample(name, dist.Normal(0.0, 1.0))
            await asyncio.sleep(0)
            results[name] = (list(tracer.trace.nodes), tracer.trace.nodes[name]["scale"], len(runtime.get_stack()))

    async def main() -> None:
        a_started, b_started = asyncio.Event(), asyncio.Event()
        await asyncio.gather(task("a", b_started, a_started), task("b", a_started, b_started))

    asyncio.run(main())
    assert results == {"a": (["a"], 2.0, 2), "b": (["b"], 3.0, 2)}


# The names pyro.poutine.runtime defines that Pyro programs and tests read (its typing imports
# and type variables left out).
PYRO_RUNTIME_NAMES = (
    "InferDict", "Message", "NonlocalExit", "ParamStoreDict", "_DIM_ALLOCATOR", "_DimAllocator",
    "_ENUM_ALLOCATOR", "_EnumAllocator", "_MODULE_NAMESPACE_DIVIDER", "_PYRO_PARAM_STORE", "_PYRO_STACK", "_inspect",
    "am_i_wrapped", "apply_stack", "default_process_message", "effectful", "get_mask", "get_plates",
)  # fmt: skip


def test_every_name_pyro_programs_read_from_the_runtime_is_at_pyros_path() -> None:
    import pyro.poutine.runtime as pyro_runtime

    assert [name for name in PYRO_RUNTIME_NAMES if not hasattr(pyro_runtime, name)] == []
    assert [name for name in PYRO_RUNTIME_NAMES if not hasattr(runtime, name)] == []


def test_the_runtime_re_exports_the_one_handler_state_the_messengers_use() -> None:
    # One allocator and one stack, whichever path reads them: a plate allocates in the state
    # that runtime._DIM_ALLOCATOR (Pyro's name) shows.
    assert runtime._DIM_ALLOCATOR is _handler_state._DIM_ALLOCATOR
    assert runtime._ENUM_ALLOCATOR is _handler_state._ENUM_ALLOCATOR
    with ember.plate("outer", 2), poutine.block() as blocker:
        assert runtime._DIM_ALLOCATOR._stack == ["outer"]
        assert runtime.get_stack() == _handler_state._STACK.get()
        assert runtime._PYRO_STACK[-1] is blocker
    assert runtime._DIM_ALLOCATOR._stack == [] and _handler_state._PLATE_DIMS.get() == ()

from __future__ import annotations

import functools
import queue as stdlib_queue
from typing import Any, Callable

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime
from ember.poutine.message import Message
from ember.poutine.queue import QueueHandler
from ember.poutine.runtime import NonlocalExit
from ember.poutine.trace_struct import Trace
from ember.poutine.util import all_escape, discrete_escape, mc_extend
from tests.parity._backends import EMBER, PYRO, Backend, assert_same_error, assert_traces_match, run_both
from tests.poutine._forms import round_trip

PROBS_B = torch.tensor([0.2, 0.5, 0.3])
OBS = torch.tensor(1.5)


def model() -> tuple[torch.Tensor, torch.Tensor]:
    ember.param("p", torch.tensor(0.3))
    a: torch.Tensor = ember.sample("a", dist.Normal(0.0, 1.0))
    b: torch.Tensor = ember.sample("b", dist.Bernoulli(0.5))
    return a, b


def enum_model() -> tuple[torch.Tensor, torch.Tensor]:
    a: torch.Tensor = ember.sample("a", dist.Bernoulli(0.3))
    b: torch.Tensor = ember.sample("b", dist.Categorical(PROBS_B))
    ember.sample("obs", dist.Normal(a + b, 1.0), obs=OBS)
    return a, b


def backend_model(b: Backend) -> Any:
    b.pyro.param("p", torch.tensor(0.3))
    a = b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
    c = b.pyro.sample("b", b.dist.Bernoulli(0.5))
    return a, c


def backend_enum_model(b: Backend) -> Any:
    a = b.pyro.sample("a", b.dist.Bernoulli(0.3))
    with b.pyro.plate("N", 2):
        c = b.pyro.sample("b", b.dist.Categorical(PROBS_B))
        b.pyro.sample("obs", b.dist.Normal(a + c, 1.0), obs=torch.tensor([1.5, 0.5]))
    return a, c


def escape_at_b(msg: Message) -> bool:
    return msg["name"] == "b"


def escape_at_b_pyro(msg: Any) -> bool:
    return bool(msg["name"] == "b")


class ListQueue:
    """A picklable FIFO queue (``queue.Queue`` holds locks, which do not pickle)."""

    def __init__(self, *items: Trace) -> None:
        self.items = list(items)

    def empty(self) -> bool:
        return not self.items

    def get(self) -> Trace:
        return self.items.pop(0)

    def put(self, item: Trace, /) -> None:
        self.items.append(item)


def _fresh_queue(b: Backend) -> stdlib_queue.Queue[Any]:
    partial_traces: stdlib_queue.Queue[Any] = stdlib_queue.Queue()
    partial_traces.put(b.poutine.Trace())
    return partial_traces


# --- escape --------------------------------------------------------------------------------------


def test_escape_raises_after_inner_traces_record_the_site() -> None:
    inner = poutine.trace(model)
    with pytest.raises(NonlocalExit) as info:
        poutine.escape(inner, escape_at_b)()
    site = info.value.site
    assert site["name"] == "b" and site["done"] is True and site["stop"] is True and site["value"] is None
    assert list(inner.trace.nodes) == ["_INPUT", "p", "a", "b"]
    assert inner.trace.nodes["b"]["value"] is None


def test_escape_hides_the_site_from_outer_traces() -> None:
    with poutine.trace() as outer:
        with pytest.raises(NonlocalExit):
            poutine.escape(model, escape_fn=escape_at_b)()
    assert list(outer.trace.nodes) == ["p", "a"]


def test_escape_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        inner = b.poutine.trace(functools.partial(backend_model, b))
        with b.poutine.trace() as outer:
            try:
                b.poutine.escape(inner, escape_fn=escape_at_b_pyro)()
            except b.poutine.NonlocalExit as e:
                site = e.site
        return inner.trace, outer.trace, site

    (ours_inner, ours_outer, ours_site), (theirs_inner, theirs_outer, theirs_site) = run_both(program)
    assert_traces_match(ours_inner, theirs_inner, check_log_prob=False)
    assert_traces_match(ours_outer, theirs_outer)
    assert sorted(ours_site) == sorted(theirs_site)


def test_reset_stack_resets_enclosing_traces_up_to_a_blocking_one() -> None:
    with poutine.trace() as outer, poutine.block(hide=["b"]), poutine.trace() as middle:
        try:
            poutine.escape(model, escape_at_b)()
        except NonlocalExit as e:
            assert list(middle.trace.nodes) == ["p", "a"]
            e.reset_stack()
    assert list(middle.trace.nodes) == []
    assert list(outer.trace.nodes) == ["p", "a"]


def test_escape_ignores_params() -> None:
    assert poutine.escape(model, lambda msg: msg["name"] == "p")()[1] in (0.0, 1.0)


def test_escape_forms() -> None:
    with pytest.raises(NonlocalExit):
        poutine.escape(model, escape_at_b)()

    @poutine.escape(escape_fn=escape_at_b)
    def decorated() -> tuple[torch.Tensor, torch.Tensor]:
        return model()

    with pytest.raises(NonlocalExit):
        decorated()
    with pytest.raises(NonlocalExit) as info, poutine.escape(escape_fn=escape_at_b) as messenger:
        model()
    assert isinstance(messenger, poutine.EscapeMessenger) and info.value.site["name"] == "b"
    assert runtime.get_stack() == ()


class Escaping:
    def __init__(self, name: str) -> None:
        self.name = name

    @poutine.escape(escape_fn=escape_at_b)
    def run(self) -> str:
        ember.sample(self.name, dist.Normal(0.0, 1.0))
        return self.name


def test_escape_method_decorator_binds_self() -> None:
    with pytest.raises(NonlocalExit) as info:
        Escaping("b").run()
    assert info.value.site["name"] == "b"
    assert Escaping("x").run() == "x"


def test_escape_wrapped_model_pickles() -> None:
    loaded = round_trip(poutine.escape(model, escape_at_b))
    assert loaded.__name__ == "model"
    with pytest.raises(NonlocalExit) as info:
        loaded()
    assert info.value.site["name"] == "b"


@pytest.mark.parametrize("order", ["condition_outside", "condition_inside", "replay_outside", "replay_inside"])
def test_escape_composition_matches_pyro(order: str) -> None:
    def program(b: Backend) -> Any:
        fn: Callable[[], Any] = functools.partial(backend_model, b)
        data = {"b": torch.tensor(1.0)}
        if order == "condition_outside":
            wrapped = b.poutine.condition(b.poutine.escape(fn, escape_at_b_pyro), data=data)
        elif order == "condition_inside":
            wrapped = b.poutine.escape(b.poutine.condition(fn, data=data), escape_at_b_pyro)
        else:
            source = b.poutine.trace(fn).get_trace()
            if order == "replay_outside":
                wrapped = b.poutine.replay(b.poutine.escape(fn, escape_at_b_pyro), trace=source)
            else:
                wrapped = b.poutine.escape(b.poutine.replay(fn, trace=source), escape_at_b_pyro)
        tracer = b.poutine.trace(wrapped)
        try:
            tracer()
            escaped = None
        except b.poutine.NonlocalExit as e:
            escaped = e.site["name"]
        return tracer.trace, escaped

    (ours, ours_escaped), (theirs, theirs_escaped) = run_both(program)
    assert ours_escaped == theirs_escaped
    assert_traces_match(ours, theirs)


# --- queue: sequential enumeration ---------------------------------------------------------------


def _ints(values: tuple[torch.Tensor, torch.Tensor]) -> tuple[int, int]:
    return int(values[0]), int(values[1])


def _drain(wrapped: Callable[[], Any], partial_traces: Any) -> list[Trace]:
    traces = []
    while not partial_traces.empty():
        traces.append(poutine.trace(wrapped).get_trace())
    return traces


def test_queue_enumerates_every_support_combination_with_its_log_joint() -> None:
    partial_traces = ListQueue(Trace())
    traces = _drain(poutine.queue(enum_model, queue=partial_traces, num_samples=10), partial_traces)
    found = {}
    for tr in traces:
        a, b = tr.nodes["_RETURN"]["value"]
        assert list(tr.nodes) == ["_INPUT", "a", "b", "obs", "_RETURN"]
        found[(int(a), int(b))] = torch.as_tensor(tr.log_prob_sum())
    assert sorted(found) == [(a, b) for a in (0, 1) for b in (0, 1, 2)]
    for (a, b), log_joint in found.items():
        expected = (
            dist.Bernoulli(0.3).log_prob(torch.tensor(float(a)))
            + PROBS_B[b].log()
            + dist.Normal(float(a + b), 1.0).log_prob(OBS)
        )
        assert torch.allclose(log_joint, expected)
    total = torch.stack(list(found.values())).logsumexp(0)
    marginal = torch.tensor([0.7, 0.3]).log().unsqueeze(-1) + PROBS_B.log()
    marginal = marginal + dist.Normal(torch.arange(2.0).unsqueeze(-1) + torch.arange(3.0), 1.0).log_prob(OBS)
    assert torch.allclose(total, marginal.logsumexp((0, 1)))


def test_queue_enumeration_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        partial_traces = _fresh_queue(b)
        wrapped = b.poutine.queue(functools.partial(backend_enum_model, b), queue=partial_traces, num_samples=10)
        traces = []
        while not partial_traces.empty():
            traces.append(b.poutine.trace(wrapped).get_trace())
        return traces

    ours, theirs = run_both(program)
    assert len(ours) == len(theirs) == 6
    for our_trace, their_trace in zip(ours, theirs):
        assert_traces_match(our_trace, their_trace)


def test_queue_with_default_num_samples_enumerates_everything() -> None:
    partial_traces = ListQueue(Trace())
    traces = _drain(poutine.queue(enum_model, queue=partial_traces), partial_traces)
    assert len(traces) == 6


def test_trace_outside_queue_keeps_only_the_completed_run() -> None:
    partial_traces = ListQueue(Trace())
    with poutine.trace() as outer:
        ember.sample("before", dist.Normal(0.0, 1.0))
        poutine.queue(enum_model, queue=partial_traces, num_samples=10)()
    # The partial runs were thrown away by reset_stack (a duplicate "a" would raise otherwise),
    # and so was the site recorded before the first escape: Pyro's reset forgets everything.
    assert list(outer.trace.nodes) == ["a", "b", "obs"]
    # FIFO: a=0 and a=1 were each extended by the three values of b, and (0, 0) ran.
    assert len(partial_traces.items) == 5


def test_trace_outside_queue_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        partial_traces = _fresh_queue(b)
        with b.poutine.trace() as outer:
            b.pyro.sample("before", b.dist.Normal(0.0, 1.0))
            b.poutine.queue(functools.partial(backend_enum_model, b), queue=partial_traces, num_samples=10)()
        return outer.trace, partial_traces.qsize()

    (ours, ours_left), (theirs, theirs_left) = run_both(program)
    assert ours_left == theirs_left
    assert_traces_match(ours, theirs)


def test_queue_with_mc_extend_and_all_escape_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        util = b.poutine.util
        partial_traces = _fresh_queue(b)
        wrapped = b.poutine.queue(
            functools.partial(backend_model, b),
            queue=partial_traces,
            extend_fn=util.mc_extend,
            escape_fn=util.all_escape,
            num_samples=2,
        )
        traces = [b.poutine.trace(wrapped).get_trace() for _ in range(3)]
        return traces, partial_traces.qsize()

    (ours, ours_left), (theirs, theirs_left) = run_both(program)
    assert ours_left == theirs_left == 1
    for our_trace, their_trace in zip(ours, theirs):
        assert_traces_match(our_trace, their_trace)


def test_queue_uses_the_given_helpers() -> None:
    partial_traces = ListQueue(Trace())
    wrapped = poutine.queue(model, queue=partial_traces, extend_fn=mc_extend, escape_fn=all_escape, num_samples=3)
    wrapped()
    # FIFO, breadth first: 3 draws of "a", each extended by 3 draws of "b"; one of the 9 ran.
    assert len(partial_traces.items) == 8
    only_discrete = ListQueue(Trace())
    poutine.queue(model, queue=only_discrete, escape_fn=discrete_escape, num_samples=5)()
    assert len(only_discrete.items) == 1


# --- queue: errors -------------------------------------------------------------------------------


def test_max_tries_exceeded_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.queue(functools.partial(backend_enum_model, b), queue=_fresh_queue(b), max_tries=1)()

    ours, _ = assert_same_error(program)
    assert isinstance(ours, ValueError) and str(ours) == "max tries (1) exceeded"


def test_empty_queue_fails_like_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.queue(functools.partial(backend_enum_model, b), queue=stdlib_queue.Queue())()

    ours, _ = assert_same_error(program)
    assert isinstance(ours, AssertionError)
    assert str(ours) == "trying to get() from an empty queue will deadlock"


def test_missing_queue_fails_with_pyros_error_type() -> None:
    for b in (EMBER, PYRO):
        with pytest.raises(AttributeError):
            b.poutine.queue(functools.partial(backend_enum_model, b))()
    with pytest.raises(AttributeError, match=r"no queue of partial traces was given \(queue=None\)"):
        poutine.queue(enum_model)()


def test_non_callable_fn_is_rejected() -> None:
    with pytest.raises(ValueError, match="is not callable, did you mean to pass it as a keyword arg"):
        poutine.queue(stdlib_queue.Queue())  # type: ignore[call-overload]  # a queue is no function


def test_errors_inside_a_run_propagate_and_leave_no_state() -> None:
    def broken() -> None:
        with ember.plate("N", 2):
            ember.sample("a", dist.Bernoulli(0.5))
            raise RuntimeError("model failed")

    partial_traces = ListQueue(Trace())
    with pytest.raises(RuntimeError, match="model failed"):
        poutine.queue(broken, queue=partial_traces, num_samples=3)()
    assert runtime.get_stack() == () and runtime._DIM_ALLOCATOR._stack == []


# --- queue: forms --------------------------------------------------------------------------------


def test_queue_function_and_decorator_forms() -> None:
    partial_traces = ListQueue(Trace())
    wrapped = poutine.queue(enum_model, queue=partial_traces, num_samples=10)
    assert isinstance(wrapped, QueueHandler) and wrapped.__name__ == "enum_model"
    assert _ints(wrapped()) == (0, 0)

    decorator_queue = ListQueue(Trace())

    @poutine.queue(queue=decorator_queue, num_samples=10)
    def decorated() -> tuple[torch.Tensor, torch.Tensor]:
        return enum_model()

    assert _ints(decorated()) == (0, 0)
    assert _ints(decorated()) == (0, 1)


def test_queue_has_no_context_manager_form() -> None:
    with pytest.raises(TypeError):
        with poutine.queue(queue=ListQueue(Trace())):  # type: ignore[attr-defined]  # no __enter__
            pass


class Enumerated:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    @poutine.queue(queue=ListQueue(Trace()), num_samples=10)
    def run(self) -> torch.Tensor:
        a, b = enum_model()
        return a + b + self.offset


def test_queue_method_decorator_binds_self() -> None:
    obj = Enumerated(10)
    assert [int(obj.run()) for _ in range(6)] == [10, 11, 12, 11, 12, 13]
    assert Enumerated.run.queue is not None and Enumerated.run.queue.empty()


def test_queue_wrapped_model_pickles() -> None:
    partial_traces = ListQueue(Trace())
    wrapped = poutine.queue(enum_model, queue=partial_traces, num_samples=10)
    assert _ints(wrapped()) == (0, 0)
    loaded = round_trip(wrapped)
    assert loaded.__name__ == "enum_model" and len(loaded.queue.items) == 5
    assert [_ints(loaded()) for _ in range(5)] == [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert _ints(wrapped()) == (0, 1)


# --- queue: composition --------------------------------------------------------------------------


QUEUE_COMPOSITIONS: dict[str, Callable[[Backend, Callable[[], Any], Any], Callable[[], Any]]] = {
    "condition_inside": lambda b, m, q: b.poutine.queue(
        b.poutine.condition(m, data={"a": torch.tensor(1.0)}), queue=q, num_samples=10
    ),
    "block_inside": lambda b, m, q: b.poutine.queue(b.poutine.block(m, hide=["a"]), queue=q, num_samples=10),
    "block_outside": lambda b, m, q: b.poutine.block(b.poutine.queue(m, queue=q, num_samples=10), hide=["a"]),
    "replay_outside": lambda b, m, q: b.poutine.replay(
        b.poutine.queue(m, queue=q, num_samples=10), trace=_discrete_guide_trace(b)
    ),
    "trace_inside": lambda b, m, q: b.poutine.queue(b.poutine.trace(m), queue=q, num_samples=10),
    "plate_outside": lambda b, m, q: _in_plate(b, b.poutine.queue(m, queue=q, num_samples=10)),
}


def _discrete_guide_trace(b: Backend) -> Any:
    return b.poutine.trace(lambda: b.pyro.sample("a", b.dist.Bernoulli(0.9))).get_trace()


def _in_plate(b: Backend, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with b.pyro.plate("M", 3, dim=-2):
            return fn()

    return run


@pytest.mark.parametrize("name", list(QUEUE_COMPOSITIONS))
def test_queue_composition_matches_pyro(name: str) -> None:
    compose = QUEUE_COMPOSITIONS[name]

    def program(b: Backend) -> Any:
        partial_traces = _fresh_queue(b)
        wrapped = compose(b, functools.partial(backend_enum_model, b), partial_traces)
        traces = [b.poutine.trace(wrapped).get_trace() for _ in range(2)]
        return traces, partial_traces.qsize()

    (ours, ours_left), (theirs, theirs_left) = run_both(program)
    assert ours_left == theirs_left
    for our_trace, their_trace in zip(ours, theirs):
        assert_traces_match(our_trace, their_trace)


def test_condition_outside_queue_fails_like_pyro() -> None:
    # The queue's own trace records "a" after the outer condition observed it, so the next
    # run's replay finds an observed site: Pyro and Ember both refuse.
    def program(b: Backend) -> Any:
        partial_traces = _fresh_queue(b)
        wrapped = b.poutine.queue(functools.partial(backend_enum_model, b), queue=partial_traces, num_samples=10)
        return b.poutine.condition(wrapped, data={"a": torch.tensor(1.0)})()

    ours, _ = assert_same_error(program)
    assert str(ours).startswith("site a must be sampled in trace")

"""One wrapped handler object called from many threads and asyncio tasks at once.

A call of a function wrapped by ``trace``, ``condition``, ``replay``, ``do``, ``substitute``,
``markov``, ... records into a messenger no other call uses meanwhile, so a module-level
``trace(condition(model))`` may serve many threads: every trace holds exactly its own call's
sites. (Before, the trace being recorded lived on the shared messenger, and about 2% of such
calls failed or mixed up sites.)
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime

THREADS = 8
CALLS = 2_000
LOC = torch.tensor(0.5)


def model(data: torch.Tensor) -> torch.Tensor:
    loc = ember.sample("loc", dist.Normal(0.0, 1.0))
    with ember.plate("data", len(data)):
        ember.sample("obs", dist.Normal(loc, 1.0), obs=data)
    return loc


# The shared object under test: built once, at module level, like a server's scoring model.
SHARED = poutine.trace(poutine.condition(model, data={"loc": LOC}))


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def _run_in_threads(work: Callable[[int], list[str]]) -> list[str]:
    barrier = threading.Barrier(THREADS, timeout=30)
    failures: list[str] = []

    def target(index: int) -> None:
        barrier.wait()
        try:
            failures.extend(work(index))
        except BaseException as error:  # recorded, so the verdict names it
            failures.append(f"thread {index}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return failures


def _check_trace(tr: poutine.Trace, data: torch.Tensor) -> str | None:
    if list(tr.nodes) != ["_INPUT", "loc", "data", "obs", "_RETURN"]:
        return f"sites {list(tr.nodes)}"
    if tr.nodes["_INPUT"]["args"][0] is not data or tr.nodes["obs"]["value"] is not data:
        return "another call's data"
    if not (tr.nodes["loc"]["is_observed"] and tr.nodes["loc"]["value"] is LOC):
        return "loc not conditioned"
    if tr.nodes["_RETURN"]["value"] is not LOC or tr.nodes["data"]["value"].shape != data.shape:
        return "another call's return or plate"
    return None


def test_one_shared_trace_of_condition_serves_eight_threads_of_2000_calls_each() -> None:
    def work(index: int) -> list[str]:
        bad = []
        for call in range(CALLS):
            data = torch.full((1 + (index + call) % 5,), float(index))
            problem = _check_trace(SHARED.get_trace(data), data)
            if problem is not None:
                bad.append(f"thread {index} call {call}: {problem}")
        return bad

    start = time.perf_counter()
    failures = _run_in_threads(work)
    assert failures == [], f"{len(failures)} of {THREADS * CALLS} calls wrong, e.g. {failures[:3]}"
    assert time.perf_counter() - start < 60
    # The shared handler still reports a (complete) last trace, as Pyro's does.
    assert list(SHARED.trace.nodes) == ["_INPUT", "loc", "data", "obs", "_RETURN"]


def test_scores_computed_from_a_shared_handler_in_threads_equal_the_single_threaded_ones() -> None:
    datas = [torch.linspace(-1.0, 1.0, 3 + i) for i in range(THREADS)]
    expected = [SHARED.get_trace(d).log_prob_sum().item() for d in datas]

    def work(index: int) -> list[str]:
        scores = {SHARED.get_trace(datas[index]).log_prob_sum().item() for _ in range(200)}
        return [] if scores == {expected[index]} else [f"thread {index}: {scores} != {expected[index]}"]

    assert _run_in_threads(work) == []


def _branchy(n: int) -> torch.Tensor:
    total = torch.tensor(0.0)
    for t in poutine.markov(range(n)):
        total = total + ember.sample(f"z{t}", dist.Normal(0.0, 1.0))
    with ember.plate("p", n):
        w = ember.param("w", torch.zeros(n))
    return total + w.sum()


SHARED_STACK = poutine.trace(
    poutine.do(
        poutine.substitute(poutine.replay(_branchy, params={}), data={"w": torch.ones(3)}),
        data={"z0": torch.tensor(2.0)},
    )
)


def test_shared_do_substitute_replay_markov_wrappers_record_each_call_alone() -> None:
    def work(index: int) -> list[str]:
        bad = []
        for call in range(150):
            n = 3
            tr = SHARED_STACK.get_trace(n)
            names = [name for name in tr.nodes if name.startswith("z")]
            if names != ["z0", "z1", "z2"] or tr.nodes["z0"]["value"].item() == 2.0:
                bad.append(f"thread {index} call {call}: {names}")
            if tr.nodes["w"]["value"].tolist() != [1.0, 1.0, 1.0]:
                bad.append(f"thread {index} call {call}: w not substituted")
            scope = dict(tr.nodes["z2"]["infer"]["_markov_scope"])
            if scope != {"z1": 1}:
                bad.append(f"thread {index} call {call}: markov scope {scope}")
        return bad

    assert _run_in_threads(work) == []


def test_a_hundred_asyncio_tasks_share_one_handler_across_executor_threads_and_awaits() -> None:
    # ``to_thread`` runs each call in a worker thread with the task's context, so the call is
    # nested in the task's own trace and plate while other workers run the same handler.
    async def task(index: int) -> list[str]:
        bad = []
        for k in range(10):
            data = torch.full((1 + (index + k) % 4,), float(index))
            with poutine.trace() as outer, ember.plate("batch", 2, dim=-2):
                ember.sample(f"a{k}", dist.Normal(0.0, 1.0))
                await asyncio.sleep(0)
                inner = await asyncio.to_thread(SHARED.get_trace, data)
                ember.sample(f"b{k}", dist.Normal(0.0, 1.0))
            if list(outer.trace.nodes) != ["batch", f"a{k}", "loc", "data", "obs", f"b{k}"]:
                bad.append(f"task {index}: outer {list(outer.trace.nodes)}")
            elif inner.nodes["obs"]["value"] is not data or inner.nodes["obs"]["fn"].batch_shape != (2, len(data)):
                bad.append(f"task {index}: inner trace mixed up")
        return bad

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(task(i) for i in range(100)))

    failures = [problem for problems in asyncio.run(main()) for problem in problems]
    assert failures == [], f"{len(failures)} of 1000 calls wrong, e.g. {failures[:3]}"
    assert runtime.get_stack() == ()

"""apply_stack's per-stack dispatch lists: the same walk as a per-frame lookup when the stack
changes, a messenger retypes or stops a message, or threads hold different stacks."""

from __future__ import annotations

import threading
from typing import Any

import torch

import ember
import ember.distributions as dist
from ember.poutine.messenger import Messenger


class _Log(Messenger):
    def __init__(self, tag: str, log: list[str]) -> None:
        super().__init__()
        self.tag, self.log = tag, log

    def _pyro_sample(self, msg: Any) -> None:
        self.log.append(f"{self.tag}:sample:{msg['name']}")

    def _pyro_post_sample(self, msg: Any) -> None:
        self.log.append(f"{self.tag}:post-sample:{msg['name']}")

    def _pyro_param(self, msg: Any) -> None:
        self.log.append(f"{self.tag}:param:{msg['name']}")


class _Retype(Messenger):
    """Turns samples named ``p`` into params for the frames outside it."""

    def _pyro_sample(self, msg: Any) -> None:
        if msg["name"] == "p":
            msg["type"] = "param"
            msg["fn"], msg["args"], msg["kwargs"] = (lambda *a, **k: torch.tensor(1.0)), (), {}


class _Stop(Messenger):
    def _pyro_sample(self, msg: Any) -> None:
        msg["stop"] = True


def _model() -> None:
    ember.sample("a", dist.Normal(0.0, 1.0))
    ember.sample("p", dist.Normal(0.0, 1.0))


def test_the_walk_follows_a_retyped_message_and_a_changed_stack() -> None:
    log: list[str] = []
    with _Log("outer", log), _Retype(), _Log("inner", log):
        _model()
        with _Log("new", log):
            ember.sample("b", dist.Normal(0.0, 1.0))
    assert log == [
        "inner:sample:a", "outer:sample:a", "outer:post-sample:a", "inner:post-sample:a",
        "inner:sample:p", "outer:param:p",
        "new:sample:b", "inner:sample:b", "outer:sample:b",
        "outer:post-sample:b", "inner:post-sample:b", "new:post-sample:b",
    ]  # fmt: skip


def test_a_stopped_message_skips_the_outer_frames_both_ways() -> None:
    log: list[str] = []
    with _Log("outer", log), _Stop(), _Log("inner", log):
        ember.sample("a", dist.Normal(0.0, 1.0))
    assert log == ["inner:sample:a", "inner:post-sample:a"]


def test_threads_with_different_stacks_keep_their_own_walks() -> None:
    logs: dict[str, list[str]] = {"x": [], "y": []}
    barrier = threading.Barrier(2)

    def run(tag: str) -> None:
        with _Log(tag, logs[tag]):
            for i in range(50):
                barrier.wait(timeout=10)
                ember.sample(f"s{i}", dist.Normal(0.0, 1.0))

    threads = [threading.Thread(target=run, args=(tag,)) for tag in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for tag, log in logs.items():
        assert log == [entry for i in range(50) for entry in (f"{tag}:sample:s{i}", f"{tag}:post-sample:s{i}")]


def test_a_hook_registered_while_the_stack_is_unchanged_is_called() -> None:
    log: list[str] = []

    class _Late(Messenger):
        pass

    with _Late():
        ember.sample("a", dist.Normal(0.0, 1.0))
        _Late.register(lambda msg: log.append(str(msg["name"])), type="sample")
        ember.sample("b", dist.Normal(0.0, 1.0))
        _Late.unregister(type="sample")
        ember.sample("c", dist.Normal(0.0, 1.0))
    assert log == ["b"]

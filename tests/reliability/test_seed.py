"""Reproducible seeded runs across threads: the documented recipe (see ``seed_messenger``).

torch has one process-wide generator and its samplers take no per-thread one, so Ember
documents what to do rather than offering a per-context generator that could not cover
torch's draws. This checks the in-process recipe: seeded runs serialised under one lock,
with no other thread drawing meanwhile, are exactly the single-threaded ones.
"""

from __future__ import annotations

import threading

import torch

import ember
import ember.distributions as dist
from ember import poutine


def model() -> torch.Tensor:
    with ember.plate("data", 5, subsample_size=3):
        x = ember.sample("x", dist.Normal(0.0, 1.0))
    return torch.cat([x, ember.sample("g", dist.Gamma(2.0, 1.0)).reshape(1)])


SEEDED = [poutine.seed(model, rng_seed=seed) for seed in range(8)]


def test_seeded_runs_serialised_under_one_lock_are_reproducible_in_eight_threads() -> None:
    expected = [SEEDED[i]() for i in range(8)]
    lock = threading.Lock()
    failures: list[str] = []

    def work(index: int) -> None:
        for call in range(25):
            with lock:
                got = SEEDED[index]()
            if not torch.equal(got, expected[index]):
                failures.append(f"thread {index} call {call}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []


def test_a_seeded_run_restores_the_callers_rng_state() -> None:
    torch.manual_seed(123)
    reference = torch.rand(3)
    torch.manual_seed(123)
    SEEDED[0]()
    assert torch.equal(torch.rand(3), reference)

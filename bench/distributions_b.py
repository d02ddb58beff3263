"""Pyro's distribution zoo, part B: Ember vs pyro-ppl on LKJ priors, Student-t and the HMMs.

Each row times one call of ``log_prob`` and one of ``sample``/``rsample`` for the same
parameters and values in both libraries:

- ``LKJCholesky`` and ``LKJ`` priors over 4x4 correlation factors / matrices, batch 10,000;
- ``MultivariateStudentT`` in 5 dimensions, batch 10,000 (``rsample``);
- ``DiscreteHMM`` with 4 states, Normal observations, T = 1,000, batch 100 (the natural
  batch: the parallel scan's work is ``batch * T * S^3``);
- ``GaussianHMM`` with hidden dim 3, observation dim 2, T = 1,000, batch 100 (``rsample``).

Contenders run in one process, interleaved (the order rotates from round to round), one
torch thread; numbers are medians over rounds of the mean time per call within a round.
``ratio`` is Ember's median over Pyro's (below 1 means Ember is faster). Validation is on
for both (the libraries' default).

Run ``python bench/distributions_b.py`` (a few minutes on a quiet machine) or ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import pyro.distributions as pyro_dist
import torch
from _common import run_interleaved, table, versions

import ember.distributions as ember_dist

BATCH = 10_000
HMM_BATCH = 100
DURATION = 1_000


def _lkj_cholesky(lib: Any) -> tuple[Callable[[], object], Callable[[], object]]:
    d = lib.LKJCholesky(4, torch.full((BATCH,), 2.0))
    value = d.sample()
    return (lambda: d.log_prob(value)), (lambda: d.sample())


def _lkj(lib: Any) -> tuple[Callable[[], object], Callable[[], object]]:
    d = lib.LKJ(4, torch.full((BATCH,), 2.0))
    value = d.sample()
    return (lambda: d.log_prob(value)), (lambda: d.sample())


def _student_t(lib: Any) -> tuple[Callable[[], object], Callable[[], object]]:
    torch.manual_seed(0)
    a = torch.randn(5, 5)
    scale_tril = torch.linalg.cholesky(a @ a.T + torch.eye(5))
    df, loc = torch.rand(BATCH) * 5 + 2, torch.randn(BATCH, 5)
    value = torch.randn(BATCH, 5)

    def log_prob() -> object:
        return lib.MultivariateStudentT(df, loc, scale_tril).log_prob(value)

    def rsample() -> object:
        return lib.MultivariateStudentT(df, loc, scale_tril).rsample()

    return log_prob, rsample


def _discrete_hmm(lib: Any) -> tuple[Callable[[], object], Callable[[], object]]:
    torch.manual_seed(0)
    init, trans = torch.randn(HMM_BATCH, 4), torch.randn(HMM_BATCH, 1, 4, 4)
    loc, scale = torch.randn(4), torch.rand(4) + 0.5
    value = torch.randn(HMM_BATCH, DURATION)

    def build() -> Any:
        return lib.DiscreteHMM(init, trans, lib.Normal(loc, scale), duration=DURATION)

    return (lambda: build().log_prob(value)), (lambda: build().sample())


def _gaussian_hmm(lib: Any) -> tuple[Callable[[], object], Callable[[], object]]:
    torch.manual_seed(0)
    hidden, obs = 3, 2
    init_loc = torch.randn(HMM_BATCH, hidden)
    trans_matrix = torch.randn(HMM_BATCH, 1, hidden, hidden) * 0.3
    trans_scale = torch.rand(HMM_BATCH, 1, hidden) + 0.5
    obs_matrix = torch.randn(hidden, obs)
    a = torch.randn(obs, obs)
    obs_cov = a @ a.T + torch.eye(obs)
    value = torch.randn(HMM_BATCH, DURATION, obs)

    def build() -> Any:
        return lib.GaussianHMM(
            lib.Normal(init_loc, 1.0).to_event(1),
            trans_matrix,
            lib.Normal(torch.zeros(hidden), trans_scale).to_event(1),
            obs_matrix,
            lib.MultivariateNormal(torch.zeros(obs), obs_cov),
            duration=DURATION,
        )

    return (lambda: build().log_prob(value)), (lambda: build().rsample())


ROWS = {
    "LKJCholesky(4) batch 10k": _lkj_cholesky,
    "LKJ(4) batch 10k": _lkj,
    "MultivariateStudentT(5) batch 10k": _student_t,
    "DiscreteHMM S=4 T=1000 batch 100": _discrete_hmm,
    "GaussianHMM 3/2 T=1000 batch 100": _gaussian_hmm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds, inner, warmup = (3, 2, 1) if args.quick else (9, 3, 2)
    torch.set_num_threads(1)
    print(versions())
    rows: list[tuple[str, ...]] = [("distribution", "op", "ember (ms)", "pyro (ms)", "ratio")]
    for name, make in ROWS.items():
        ours, theirs = make(ember_dist), make(pyro_dist)
        jobs = {
            ("ember", "log_prob"): ours[0],
            ("pyro", "log_prob"): theirs[0],
            ("ember", "sample"): ours[1],
            ("pyro", "sample"): theirs[1],
        }
        samples = run_interleaved(jobs, rounds=rounds, inner=inner, warmup=warmup)
        for op in ("log_prob", "sample"):
            e = statistics.median(samples[("ember", op)])
            p = statistics.median(samples[("pyro", op)])
            rows.append((name, op, f"{e * 1e3:.2f}", f"{p * 1e3:.2f}", f"{e / p:.2f}"))
    print(table(rows))


if __name__ == "__main__":
    main()

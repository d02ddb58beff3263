"""Normalizing-flow throughput: Ember's transforms vs pyro-ppl's, batch of 10,000.

Rows: :class:`AffineAutoregressive` forward (sampling direction) and inverse (scoring an
outside value: ``D`` network passes), and :class:`Spline` forward and inverse, each computing
the output and ``log_abs_det_jacobian`` with autograd recording (as in training, without the
backward pass). Each pair of contenders holds the same parameters (Ember's module loads
pyro-ppl's state dict) and is checked to give the same values before timing. Inputs are fresh
tensors each call, so the one-slot caches never short-cut the work.

All contenders run in one process, interleaved round by round; the figures are medians over
rounds of the mean time of one call, and the ratio is Ember's median over pyro-ppl's (target
<= 1.0). Run ``python bench/distributions_flows.py`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import pyro.distributions.transforms as pyro_transforms
import pyro.nn
import torch
from _common import run_interleaved, table, versions

import ember.distributions.transforms as ember_transforms
import ember.nn

BATCH = 10_000
DIM = 8
BINS = 8


def _pair_affine_autoregressive() -> tuple[Any, Any]:
    permutation = torch.randperm(DIM)
    theirs = pyro_transforms.AffineAutoregressive(pyro.nn.AutoRegressiveNN(DIM, [3 * DIM + 1], permutation=permutation))
    ours = ember_transforms.AffineAutoregressive(ember.nn.AutoRegressiveNN(DIM, [3 * DIM + 1], permutation=permutation))
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _pair_spline() -> tuple[Any, Any]:
    theirs = pyro_transforms.Spline(DIM, count_bins=BINS)
    ours = ember_transforms.Spline(DIM, count_bins=BINS)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _forward(transform: Any, x: torch.Tensor) -> Callable[[], object]:
    def step() -> object:
        value = x.clone()  # a new tensor: the cache cannot answer
        y = transform(value)
        return transform.log_abs_det_jacobian(value, y)

    return step


def _inverse(transform: Any, y: torch.Tensor) -> Callable[[], object]:
    def step() -> object:
        value = y.clone()
        x = transform.inv(value)
        return transform.log_abs_det_jacobian(x, value)

    return step


def _check_same(ours: Any, theirs: Any, x: torch.Tensor) -> None:
    y_ours, y_theirs = ours(x.clone()), theirs(x.clone())
    assert torch.allclose(y_ours, y_theirs, atol=1e-4), "forward values differ"
    y = y_theirs.detach()
    assert torch.allclose(ours.inv(y.clone()), theirs.inv(y.clone()), atol=1e-4), "inverse values differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rounds, inner = (3, 2) if args.quick else (11, 5)
    x = torch.randn(BATCH, DIM) * 1.5
    jobs: dict[tuple[str, str], Callable[[], object]] = {}
    for label, make in (("AffineAutoregressive", _pair_affine_autoregressive), ("Spline", _pair_spline)):
        ours, theirs = make()
        _check_same(ours, theirs, x)
        y = theirs(x.clone()).detach()
        jobs[(f"{label} forward", "ember")] = _forward(ours, x)
        jobs[(f"{label} forward", "pyro")] = _forward(theirs, x)
        jobs[(f"{label} inverse", "ember")] = _inverse(ours, y)
        jobs[(f"{label} inverse", "pyro")] = _inverse(theirs, y)
    samples = run_interleaved(jobs, rounds=rounds, inner=inner, warmup=2)
    medians = {key: statistics.median(values) for key, values in samples.items()}
    rows = [("row (batch 10,000, D = 8)", "ember ms", "pyro-ppl ms", "ratio")]
    for row in dict.fromkeys(name for name, _ in jobs):
        ember_ms, pyro_ms = medians[(row, "ember")] * 1e3, medians[(row, "pyro")] * 1e3
        rows.append((row, f"{ember_ms:.2f}", f"{pyro_ms:.2f}", f"{ember_ms / pyro_ms:.2f}"))
    print(versions())
    print(f"medians of {rounds} interleaved rounds of {inner} calls each")
    print(table(rows))


if __name__ == "__main__":
    main()

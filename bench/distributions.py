"""Distribution throughput: Ember's classes vs pyro-ppl's, batch of 10,000, in one process.

Each row of :data:`ROWS` names a distribution and says how to build it (for either
library), which value to score, and whether draws are ``rsample`` or ``sample``. For every
row two operations are timed, each including the construction of the distribution (as a
model step does):

* ``log_prob``: build, then ``log_prob(value).sum()``;
* ``draw``: build, then ``rsample()`` (or ``sample()`` when the distribution has no
  reparameterized sampler).

Ember and Pyro run interleaved (the order rotates from round to round; see
``_common.run_interleaved``); reported numbers are medians over rounds of the mean time per
call within a round, with the Ember/Pyro ratio and Ember's throughput in elements per
second. Argument and value validation stay at the libraries' default (on) for both. Torch
runs on one thread.

Other benchmarks add their rows to :data:`ROWS` (one :class:`Row` each); the harness does
not change. Run ``python bench/distributions.py`` (``--quick`` for a smoke run, ``--only``
to select rows by name).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro.distributions
import torch
from _common import run_interleaved, table, versions

import ember.distributions

BATCH = 10_000

Builder = Callable[[Any], Any]  # the library's distributions module -> a distribution


@dataclass(frozen=True)
class Row:
    """One benchmarked distribution.

    :param name: the row label.
    :param build: builds the distribution from a distributions module (Ember's or Pyro's),
        so both libraries get the same parameters.
    :param value: the value ``log_prob`` scores.
    :param reparameterized: whether ``draw`` times ``rsample`` (else ``sample``).
    """

    name: str
    build: Builder
    value: torch.Tensor
    reparameterized: bool


def _positive(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(BATCH, generator=generator) * 3 + 0.2


def _counts(seed: int, high: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, (BATCH,), generator=generator).float()


_CONCENTRATION, _RATE, _GATE = _positive(0), _positive(1), torch.rand(BATCH) * 0.9
_TOTAL = torch.full((BATCH,), 10.0)
_MASK = torch.rand(BATCH) < 0.5
_LOC, _SCALE = torch.randn(BATCH), _positive(2)

ROWS: list[Row] = [
    Row(
        "GammaPoisson",
        lambda d: d.GammaPoisson(_CONCENTRATION, _RATE),
        _counts(3, 20),
        reparameterized=False,
    ),
    Row(
        "ZeroInflatedPoisson",
        lambda d: d.ZeroInflatedPoisson(_RATE, gate=_GATE),
        _counts(4, 8),
        reparameterized=False,
    ),
    Row(
        "BetaBinomial",
        lambda d: d.BetaBinomial(_CONCENTRATION, _RATE, _TOTAL),
        _counts(5, 11),
        reparameterized=False,
    ),
    Row(
        "MaskedMixture",
        lambda d: d.MaskedMixture(_MASK, d.Normal(_LOC, _SCALE), d.Normal(-_LOC, 1.0)),
        torch.randn(BATCH),
        reparameterized=True,
    ),
]


def _jobs(row: Row) -> dict[tuple[str, str], Callable[[], object]]:
    jobs: dict[tuple[str, str], Callable[[], object]] = {}
    for library, module in (("ember", ember.distributions), ("pyro", pyro.distributions)):

        def log_prob(module: Any = module) -> object:
            return row.build(module).log_prob(row.value).sum()

        def draw(module: Any = module) -> object:
            d = row.build(module)
            return d.rsample() if row.reparameterized else d.sample()

        jobs[(library, "log_prob")] = log_prob
        jobs[(library, "draw")] = draw
    return jobs


def _check_agreement(row: Row) -> None:
    ours = row.build(ember.distributions).log_prob(row.value)
    theirs = row.build(pyro.distributions).log_prob(row.value)
    if not torch.allclose(ours, theirs, atol=1e-4):
        raise AssertionError(f"{row.name}: Ember's log_prob disagrees with Pyro's")


def report(rows: list[Row], rounds: int, inner: int) -> str:
    """Time every row and format the table."""
    lines = [("distribution", "op", "ember (us)", "pyro (us)", "ember/pyro", "ember Melem/s")]
    for row in rows:
        _check_agreement(row)
        samples = run_interleaved(_jobs(row), rounds=rounds, inner=inner, warmup=3)
        for op in ("log_prob", "draw"):
            ours = statistics.median(samples[("ember", op)])
            theirs = statistics.median(samples[("pyro", op)])
            label = op if op == "log_prob" else ("rsample" if row.reparameterized else "sample")
            lines.append(
                (
                    row.name,
                    label,
                    f"{ours * 1e6:.0f}",
                    f"{theirs * 1e6:.0f}",
                    f"{ours / theirs:.2f}",
                    f"{BATCH / ours / 1e6:.1f}",
                )
            )
    return table(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke run")
    parser.add_argument("--only", nargs="*", help="row names to run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = [row for row in ROWS if not args.only or row.name in args.only]
    rounds, inner = (3, 5) if args.quick else (15, 20)
    print(f"batch {BATCH}; medians of {rounds} interleaved rounds of {inner} calls; {versions()}")
    print(report(rows, rounds, inner))


if __name__ == "__main__":
    main()

"""Handler overhead: Ember vs pyro-ppl vs bare torch, on a model of 100 scalar sample sites.

Times ``trace(model).get_trace().log_prob_sum()`` with the model wrapped in 0, 1, 3, 6, 10 and
20 pass-through handlers (cycling through scale, mask, condition, block, substitute, replay:
every site goes through unchanged), for Ember and for pyro-ppl, next to hand-written torch doing the same
distribution constructions, draws and log-density sums with no handlers and no trace.

All contenders run in one process and are interleaved: each round times every
(contender, depth) pair once, in an order rotated from round to round, so slow drift in the
machine hits all of them alike. Reported numbers are medians over rounds of the mean time of
one call within a round.

Bare torch does the same work at every depth, so it is timed once per round and its median
is the denominator of every row's ``ember/torch``. Distribution argument validation is left
at the libraries' defaults (on), the same for all three.

A second table isolates the handler machinery: the same model with a distribution whose
draw and log density return a stored tensor (no torch work), so the time is all primitive,
handler, trace and summation overhead. That is where Ember and Pyro differ; in the first
table torch's own distribution construction, validation and log densities dominate.

A third table is the cost curve over plate nesting: 20 sites inside 0 to 4 nested plates,
against torch drawing and scoring one distribution of the plates' shape per site.

``--device`` puts the plate model's tensors (and the plates' indices) on that device; the
100-site models use Python-number parameters, i.e. torch's default device.

Run ``PYTHONPATH=. python bench/overhead.py`` (a few minutes on a quiet machine) or ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.poutine
import torch
from _common import run_interleaved, table, versions

import ember
import ember.distributions
import ember.poutine

NUM_SITES = 100
DEPTHS = (0, 1, 3, 6, 10, 20)
PLATE_NESTING = (0, 1, 2, 3, 4)
PLATE_SIZE = 3
PLATE_SITES = 20
SITE_NAMES = tuple(f"x{i}" for i in range(NUM_SITES))


def make_model(lib: Any, dist: Any) -> Callable[[], None]:
    """The benchmark model for one library: 100 scalar ``Normal(0., 1.)`` sample sites."""
    sample = lib.sample
    normal = dist.Normal

    def model() -> None:
        for name in SITE_NAMES:
            sample(name, normal(0.0, 1.0))

    return model


def make_free_model(lib: Any, mixin: type) -> Callable[[], None]:
    """100 sample sites of a distribution that does no torch work: pure handler overhead."""
    zero = torch.tensor(0.0)

    class Free(torch.distributions.Distribution, mixin):  # type: ignore[misc,valid-type]  # mixin is a runtime class
        has_rsample = True
        arg_constraints: dict[str, Any] = {}

        def __init__(self) -> None:
            pass

        @property
        def batch_shape(self) -> torch.Size:
            return torch.Size()

        @property
        def event_shape(self) -> torch.Size:
            return torch.Size()

        def rsample(self, sample_shape: Any = ()) -> torch.Tensor:
            return zero

        def sample(self, sample_shape: Any = ()) -> torch.Tensor:
            return zero

        def log_prob(self, value: Any) -> torch.Tensor:
            return zero

    free = Free()
    sample = lib.sample

    def model() -> None:
        for name in SITE_NAMES:
            sample(name, free)

    return model


def wrap(model: Callable[[], None], poutine: Any, depth: int) -> Callable[[], None]:
    """``model`` inside ``depth`` pass-through handlers, cycling through six kinds (first = innermost)."""
    handlers: list[Callable[[Callable[[], None]], Callable[[], None]]] = [
        lambda fn: poutine.scale(fn, scale=1.0),
        lambda fn: poutine.mask(fn, mask=True),
        lambda fn: poutine.condition(fn, data={}),
        lambda fn: poutine.block(fn, hide=[]),
        lambda fn: poutine.substitute(fn, data={}),
        lambda fn: poutine.replay(fn, trace=poutine.Trace()),
    ]
    for i in range(depth):
        model = handlers[i % len(handlers)](model)
    return model


def make_traced_step(model: Callable[[], None], poutine: Any, depth: int) -> Callable[[], object]:
    traced = poutine.trace(wrap(model, poutine, depth))

    def step() -> object:
        result: object = traced.get_trace().log_prob_sum()
        return result

    return step


def make_plate_model(lib: Any, dist: Any, nesting: int, device: torch.device) -> Callable[[], None]:
    """20 Normal sites inside ``nesting`` nested plates of size 3 (dims -1, -2, ...)."""
    sample, normal, plate = lib.sample, dist.Normal, lib.plate
    loc, scale = torch.zeros((), device=device), torch.ones((), device=device)
    names = SITE_NAMES[:PLATE_SITES]

    def model() -> None:
        plates = [plate(f"p{i}", PLATE_SIZE, dim=-1 - i, device=device) for i in range(nesting)]
        for p in plates:
            p.__enter__()
        try:
            for name in names:
                sample(name, normal(loc, scale))
        finally:
            for p in reversed(plates):
                p.__exit__(None, None, None)

    return model


def make_torch_plate_step(nesting: int, device: torch.device) -> Callable[[], object]:
    """The plate model's work by hand: one distribution of the plates' shape per site."""
    normal = torch.distributions.Normal
    loc, scale = torch.zeros((), device=device), torch.ones((), device=device)
    shape = [PLATE_SIZE] * nesting

    def step() -> object:
        total: torch.Tensor | float = 0.0
        for _ in range(PLATE_SITES):
            d: Any = normal(loc, scale).expand(shape)
            value = d.rsample()
            total = total + d.log_prob(value).sum()
        return total

    return step


def torch_step() -> object:
    """The same work by hand: build, draw, score and sum, with no handlers and no trace."""
    normal = torch.distributions.Normal
    total: torch.Tensor | float = 0.0
    for _ in SITE_NAMES:
        d: Any = normal(0.0, 1.0)  # Any: torch's log_prob is unannotated
        value = d.rsample()
        total = total + d.log_prob(value).sum()
    return total


def run(rounds: int, inner: int, warmup: int, device: torch.device) -> dict[tuple[str, int], list[float]]:
    from pyro.distributions.torch_distribution import (
        TorchDistributionMixin as PyroMixin,
    )

    jobs: dict[tuple[str, int], Callable[[], object]] = {}
    ember_normal, pyro_normal = make_model(ember, ember.distributions), make_model(pyro, pyro.distributions)
    ember_free = make_free_model(ember, ember.distributions.TorchDistributionMixin)
    pyro_free = make_free_model(pyro, PyroMixin)
    for depth in DEPTHS:
        jobs[("ember", depth)] = make_traced_step(ember_normal, ember.poutine, depth)
        jobs[("pyro", depth)] = make_traced_step(pyro_normal, pyro.poutine, depth)
        jobs[("ember-free", depth)] = make_traced_step(ember_free, ember.poutine, depth)
        jobs[("pyro-free", depth)] = make_traced_step(pyro_free, pyro.poutine, depth)
    # Bare torch has no handlers, so one entry (depth 0) serves every row.
    jobs[("torch", 0)] = torch_step
    for nesting in PLATE_NESTING:
        jobs[("ember-plates", nesting)] = make_traced_step(
            make_plate_model(ember, ember.distributions, nesting, device), ember.poutine, 0
        )
        jobs[("pyro-plates", nesting)] = make_traced_step(
            make_plate_model(pyro, pyro.distributions, nesting, device), pyro.poutine, 0
        )
        jobs[("torch-plates", nesting)] = make_torch_plate_step(nesting, device)
    return run_interleaved(jobs, rounds, inner, warmup)


def report(samples: dict[tuple[str, int], list[float]], rounds: int, inner: int) -> str:
    def median_us(name: str, depth: int) -> float:
        return statistics.median(samples[(name, depth)]) * 1e6

    header = (
        f"trace(model).get_trace().log_prob_sum(), {NUM_SITES} scalar Normal sites; "
        f"median of {rounds} rounds x {inner} calls\n"
        f"{versions()}\n"
    )
    columns = ("handlers", "ember us", "pyro us", "torch us", "ember/pyro", "ember/torch")
    rows = [columns]
    for depth in DEPTHS:
        e, p, t = median_us("ember", depth), median_us("pyro", depth), median_us("torch", 0)
        rows.append((str(depth), f"{e:,.0f}", f"{p:,.0f}", f"{t:,.0f}", f"{e / p:.2f}x", f"{e / t:.2f}x"))
    overhead = [("handlers", "ember us", "pyro us", "ember/pyro")]
    for depth in DEPTHS:
        e, p = median_us("ember-free", depth), median_us("pyro-free", depth)
        overhead.append((str(depth), f"{e:,.0f}", f"{p:,.0f}", f"{e / p:.2f}x"))
    plates = [("plates", "ember us", "pyro us", "torch us", "ember/pyro", "ember/torch")]
    for nesting in PLATE_NESTING:
        e, p, t = median_us("ember-plates", nesting), median_us("pyro-plates", nesting), median_us("torch-plates", nesting)
        plates.append((str(nesting), f"{e:,.0f}", f"{p:,.0f}", f"{t:,.0f}", f"{e / p:.2f}x", f"{e / t:.2f}x"))
    return (
        header
        + table(rows)
        + "\n\nHandler overhead alone (a distribution that does no torch work):\n"
        + table(overhead)
        + f"\n\nPlate nesting: {PLATE_SITES} Normal sites inside 0-4 nested plates of size {PLATE_SIZE}, "
        "no other handler (torch: one expanded distribution per site):\n"
        + table(plates)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--inner", type=int, default=3, help="calls timed together per round (default 3)")
    parser.add_argument("--quick", action="store_true", help="5 rounds x 2 calls, for a smoke run")
    parser.add_argument("--device", default="cpu", help="torch device of the plate model's tensors (default cpu)")
    args = parser.parse_args()
    rounds, inner, warmup = (5, 2, 2) if args.quick else (args.rounds, args.inner, 3)
    if args.quick and args.rounds != parser.get_default("rounds"):
        rounds = args.rounds
    torch.set_num_threads(1)
    torch.manual_seed(0)
    samples = run(rounds, inner, warmup, torch.device(args.device))
    print(report(samples, rounds, inner))


if __name__ == "__main__":
    main()

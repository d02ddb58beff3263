"""NUTS effective samples per second: Ember vs pyro-ppl (jit off/on) vs NumPyro.

Run with ``python bench/mcmc.py [--contenders a,b,...] [--seeds 3] [--warmup 500] [--samples 1000]``.
Three models: (a) non-centred eight schools, (b) logistic regression with N=1,000 and D=10,
(c) a non-centred hierarchical normal model with 50 groups of 10 observations. For each model
and contender it runs NUTS once per seed (rounds interleave the contenders), computes the
minimum effective sample size over all latent components with one ESS function
(``ember.ops.stats.effective_sample_size``) and divides by the run's time, set-up and
compilation included. It prints the median over seeds of ESS per wall second and per CPU
second (the machine is shared: CPU time is less disturbed by other processes), and the ratios
to pyro-ppl without jit.

NumPyro runs in a separate virtual environment (``/work/bench-venv`` or ``$BENCH_VENV``) via
``bench/_numpyro_nuts.py``; it is never an Ember dependency. Missing, it is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import pyro
import pyro.distributions as pdist
import torch
from _common import table, versions
from pyro.infer import MCMC as PyroMCMC
from pyro.infer import NUTS as PyroNUTS

import ember
import ember.distributions as edist
from ember.infer import MCMC, NUTS
from ember.ops.stats import effective_sample_size

BENCH_VENV = os.environ.get("BENCH_VENV", "/work/bench-venv")
HERE = os.path.dirname(os.path.abspath(__file__))


def make_models(p: Any, dist: Any) -> dict[str, Callable[..., None]]:
    """The three models, written once against a Pyro-like module ``p`` and its distributions."""

    def eight_schools(sigma: torch.Tensor, y: torch.Tensor) -> None:
        mu = p.sample("mu", dist.Normal(0.0, 5.0))
        tau = p.sample("tau", dist.HalfCauchy(5.0))
        with p.plate("J", len(sigma)):
            eta = p.sample("eta", dist.Normal(0.0, 1.0))
            p.sample("obs", dist.Normal(mu + tau * eta, sigma), obs=y)

    def logistic(x: torch.Tensor, y: torch.Tensor) -> None:
        coefs = p.sample("coefs", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
        with p.plate("data", x.shape[0]):
            p.sample("obs", dist.Bernoulli(logits=x @ coefs), obs=y)

    def hierarchical(group: torch.Tensor, y: torch.Tensor) -> None:
        mu = p.sample("mu", dist.Normal(0.0, 5.0))
        tau = p.sample("tau", dist.HalfNormal(2.0))
        sigma = p.sample("sigma", dist.HalfNormal(2.0))
        with p.plate("groups", 50):
            eta = p.sample("eta", dist.Normal(0.0, 1.0))
        theta = mu + tau * eta
        with p.plate("data", len(y)):
            p.sample("obs", dist.Normal(theta[group], sigma), obs=y)

    return {"eight_schools": eight_schools, "logistic": logistic, "hierarchical": hierarchical}


def make_data() -> dict[str, tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 10, generator=g)
    y = torch.bernoulli(torch.sigmoid(x @ torch.linspace(-2, 2, 10)), generator=g)
    group = torch.arange(50).repeat_interleave(10)
    theta = 1.0 + 0.8 * torch.randn(50, generator=g)
    return {
        "eight_schools": (torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]),
                          torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])),
        "logistic": (x, y),
        "hierarchical": (group, theta[group] + torch.randn(500, generator=g)),
    }


def min_ess(samples: dict[str, torch.Tensor]) -> float:
    """The smallest ESS over every component of every site (samples ``(chains, draws, ...)``)."""
    return min(float(effective_sample_size(v.double()).min()) for v in samples.values())


def run_ember(name: str, data: tuple[torch.Tensor, ...], seed: int, chains: int, warmup: int, samples: int,
              jit: bool = False) -> tuple[float, float, float]:
    model = make_models(ember, edist)[name]
    ember.set_rng_seed(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    mcmc = MCMC(NUTS(model, jit_compile=jit), num_samples=samples, warmup_steps=warmup, num_chains=chains,
                chain_method="vectorized", disable_progbar=True)
    mcmc.run(*data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return min_ess(mcmc.get_samples(group_by_chain=True)), wall, cpu


def run_pyro(name: str, data: tuple[torch.Tensor, ...], seed: int, chains: int, warmup: int, samples: int,
             jit: bool = False) -> tuple[float, float, float]:
    model = make_models(pyro, pdist)[name]
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    wall, cpu = time.perf_counter(), time.process_time()
    mcmc: Any = PyroMCMC(PyroNUTS(model, jit_compile=jit, ignore_jit_warnings=True),  # type: ignore[no-untyped-call]  # pyro is untyped
                         num_samples=samples, warmup_steps=warmup, disable_progbar=True)
    mcmc.run(*data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return min_ess(mcmc.get_samples(group_by_chain=True)), wall, cpu


def run_numpyro(name: str, data: tuple[torch.Tensor, ...], seed: int, chains: int, warmup: int,
                samples: int) -> tuple[float, float, float]:
    python = os.path.join(BENCH_VENV, "bin", "python")
    command = [python, os.path.join(HERE, "_numpyro_nuts.py"), name, str(seed), str(chains), str(warmup), str(samples)]
    payload = json.dumps([d.tolist() for d in data])
    done = subprocess.run(command, input=payload, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    draws = {k: torch.tensor(v) for k, v in result["samples"].items()}
    return min_ess(draws), result["wall"], result["cpu"]


Result = tuple[float, float, float]
Data = tuple[torch.Tensor, ...]
CONTENDERS: dict[str, Callable[[str, Data, int, int, int, int], Result]] = {
    "ember": lambda n, d, s, c, w, k: run_ember(n, d, s, c, w, k),
    "ember-4-vectorized": lambda n, d, s, c, w, k: run_ember(n, d, s, 4, w, k),
    "ember-jit": lambda n, d, s, c, w, k: run_ember(n, d, s, c, w, k, jit=True),
    "pyro": lambda n, d, s, c, w, k: run_pyro(n, d, s, c, w, k),
    "pyro-jit": lambda n, d, s, c, w, k: run_pyro(n, d, s, c, w, k, jit=True),
    "numpyro": lambda n, d, s, c, w, k: run_numpyro(n, d, s, c, w, k),
    "numpyro-4-vectorized": lambda n, d, s, c, w, k: run_numpyro(n, d, s, 4, w, k),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contenders", default=",".join(c for c in CONTENDERS if c != "ember-jit"))
    parser.add_argument("--models", default="eight_schools,logistic,hierarchical")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    contenders = args.contenders.split(",")
    if not os.path.exists(os.path.join(BENCH_VENV, "bin", "python")):
        print(f"NumPyro skipped: no bench venv at {BENCH_VENV}")
        contenders = [c for c in contenders if not c.startswith("numpyro")]
    data = make_data()
    raw: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    for name in args.models.split(","):
        raw[name] = {c: [] for c in contenders}
        for seed in range(args.seeds):
            order = contenders[seed % len(contenders):] + contenders[: seed % len(contenders)]
            for c in order if seed % 2 == 0 else reversed(order):
                result = CONTENDERS[c](name, data[name], seed, 1, args.warmup, args.samples)
                raw[name][c].append(result)
                print(f"{name:>14} {c:>22} seed {seed}: min ESS {result[0]:7.1f}, wall {result[1]:7.2f} s, cpu {result[2]:7.2f} s",
                      flush=True)
    print()
    print(f"NUTS, {args.warmup} warmup + {args.samples} samples per chain, median over {args.seeds} seeds; {versions()}")
    rows = [("model", "contender", "min ESS", "wall s", "cpu s", "ESS/wall s", "ESS/cpu s", "x pyro (cpu)")]
    for name, per in raw.items():
        base = None
        if "pyro" in per and per["pyro"]:
            base = statistics.median(e / c for e, _, c in per["pyro"])
        for c, results in per.items():
            ess_cpu = statistics.median(e / cpu for e, _, cpu in results)
            rows.append((name, c, f"{statistics.median(e for e, _, _ in results):.0f}",
                         f"{statistics.median(w for _, w, _ in results):.2f}",
                         f"{statistics.median(cpu for _, _, cpu in results):.2f}",
                         f"{statistics.median(e / w for e, w, _ in results):.1f}", f"{ess_cpu:.1f}",
                         f"{ess_cpu / base:.1f}" if base else "-"))
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f)


if __name__ == "__main__":
    main()
    sys.exit(0)

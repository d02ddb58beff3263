"""Compiled SVI steps: Ember's CompiledTrace_ELBO against eager Ember, pyro-ppl and hand-written torch.

Three workloads, each with 1,000 data points:

- ``regression mean-field`` / ``regression AutoNormal``: the Bayesian linear regression of
  ``bench/svi.py`` (three latent globals), with its hand-written guide or ``AutoNormal``;
- ``bnn``: a 5-32-1 Bayesian neural net (``PyroModule`` with ``PyroSample`` weights, 225
  latents) with ``AutoDiagonalNormal``;
- ``local``: 1,000 local latents ``z_i ~ N(0, 1)``, ``y_i ~ N(z_i, 0.5)``, with an amortised
  guide (a 1-16-2 encoder registered with ``module``).

Contenders: Ember ``Trace_ELBO`` (eager), Ember ``CompiledTrace_ELBO`` (inductor), pyro-ppl
``Trace_ELBO`` and ``JitTrace_ELBO``, the same ELBO step hand-written in eager torch, and that
step with its loss under ``torch.compile`` (inductor). All use Adam (lr 0.01).

``warm-up s`` is the wall time of each contender's first three steps (Ember compiled: the eager
first step, the capture, and the compile on the second step; torch.compile: the compile on the
first step; Jit: the trace). Step times are medians over interleaved rounds of the mean time
of a step within a round; the machine is shared, so the figures are noisy (the load average
is printed). ``break-even`` is the step count after which the compiled contender's total time
(warm-up included) drops below eager Ember's.

A fifth workload, ``predictive``, times one ``Predictive(..., parallel=True)`` call of 1,000
draws of the regression with an ``AutoNormal`` guide: Ember eager, Ember ``compile=True``
(inductor), pyro-ppl, and the same draws hand-written in torch.

Run ``python bench/compiled.py`` (``--quick`` for a short run, ``--workloads`` to pick).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import pyro
import pyro.distributions
import pyro.infer
import pyro.infer.autoguide
import pyro.nn
import pyro.optim
import torch
from _common import run_interleaved, table, versions
from svi import make_data, make_model

import ember
import ember.distributions
import ember.infer
import ember.infer.autoguide
import ember.nn
import ember.optim

N = 1000
Step = Callable[[], object]


# -- the models, for either library -------------------------------------------------------


def make_guide(lib: Any, dist: Any) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """``bench/svi.py``'s mean-field guide with a fresh init tensor per param.

    (There, the three ``*_loc`` params start from one shared zero tensor, which both stores
    keep as one leaf: the locs are tied, and pyro-ppl's ``JitTrace_ELBO`` fails on it.)
    """
    positive = dist.constraints.positive

    def guide(x: torch.Tensor, y: torch.Tensor) -> None:
        for name in ("intercept", "slope"):
            loc = lib.param(f"{name}_loc", torch.zeros(()))
            scale = lib.param(f"{name}_scale", torch.ones(()), constraint=positive)
            lib.sample(name, dist.Normal(loc, scale))
        loc = lib.param("noise_loc", torch.zeros(()))
        scale = lib.param("noise_scale", torch.ones(()), constraint=positive)
        lib.sample("noise", dist.LogNormal(loc, scale))

    return guide


def make_bnn(lib: Any, dist: Any, nn: Any) -> Any:
    class BNN(nn.PyroModule):  # a class per library
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.PyroModule[torch.nn.Linear](5, 32)
            self.fc1.weight = nn.PyroSample(dist.Normal(0.0, 1.0).expand([32, 5]).to_event(2))
            self.fc1.bias = nn.PyroSample(dist.Normal(0.0, 1.0).expand([32]).to_event(1))
            self.fc2 = nn.PyroModule[torch.nn.Linear](32, 1)
            self.fc2.weight = nn.PyroSample(dist.Normal(0.0, 1.0).expand([1, 32]).to_event(2))
            self.fc2.bias = nn.PyroSample(dist.Normal(0.0, 1.0).expand([1]).to_event(1))

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> None:
            mean = self.fc2(torch.tanh(self.fc1(x))).squeeze(-1)
            with lib.plate("data", len(x)):
                lib.sample("y", dist.Normal(mean, 0.3), obs=y)

    return BNN()


def bnn_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, generator=g)
    y = torch.sin(x.sum(-1)) + 0.1 * torch.randn(N, generator=g)
    return x, y


_ENCODERS: dict[str, torch.nn.Module] = {}


def make_local(lib: Any, dist: Any) -> tuple[Callable[..., None], Callable[..., None]]:
    # One encoder per library: its contenders share the param store, which keeps the first
    # module's tensors under "encoder$$$..."; a second module would not be the one trained.
    if lib.__name__ not in _ENCODERS:
        torch.manual_seed(1)
        _ENCODERS[lib.__name__] = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    encoder = _ENCODERS[lib.__name__]

    def model(y: torch.Tensor) -> None:
        with lib.plate("data", len(y)):
            z = lib.sample("z", dist.Normal(0.0, 1.0))
            lib.sample("y", dist.Normal(z, 0.5), obs=y)

    def guide(y: torch.Tensor) -> None:
        out = lib.module("encoder", encoder)(y.unsqueeze(-1))
        with lib.plate("data", len(y)):
            lib.sample("z", dist.Normal(out[:, 0], torch.nn.functional.softplus(out[:, 1])))

    return model, guide


def local_data() -> torch.Tensor:
    return torch.randn(N, generator=torch.Generator().manual_seed(2)) * 1.2


# -- hand-written torch steps -------------------------------------------------------------


def torch_bnn_loss() -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    x, y = bnn_data()
    shapes = [(32, 5), (32,), (1, 32), (1,)]
    locs = [torch.zeros(s, requires_grad=True) for s in shapes]
    rhos = [torch.full(s, -2.0, requires_grad=True) for s in shapes]
    normal = torch.distributions.Normal

    def loss() -> torch.Tensor:
        qs = [normal(loc, torch.nn.functional.softplus(rho)) for loc, rho in zip(locs, rhos)]
        w1, b1, w2, b2 = ws = [q.rsample() for q in qs]
        log_q = sum(q.log_prob(w).sum() for q, w in zip(qs, ws))
        log_prior = sum(normal(0.0, 1.0).log_prob(w).sum() for w in ws)
        mean = (torch.tanh(x @ w1.T + b1) @ w2.T + b2).squeeze(-1)
        return log_q - log_prior - normal(mean, 0.3).log_prob(y).sum()

    return loss, locs + rhos


def torch_local_loss() -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    y = local_data()
    torch.manual_seed(1)
    encoder = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    normal = torch.distributions.Normal

    def loss() -> torch.Tensor:
        out = encoder(y.unsqueeze(-1))
        q = normal(out[:, 0], torch.nn.functional.softplus(out[:, 1]))
        z = q.rsample()
        log_p = normal(0.0, 1.0).log_prob(z).sum() + normal(z, 0.5).log_prob(y).sum()
        return q.log_prob(z).sum() - log_p

    return loss, list(encoder.parameters())


def torch_regression_loss() -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    x, y = make_data(torch.device("cpu"))
    params = [torch.zeros((), requires_grad=True) for _ in range(6)]
    normal = torch.distributions.Normal
    prior = normal(0.0, 10.0)
    half = torch.distributions.HalfNormal(5.0)

    def loss() -> torch.Tensor:
        a_loc, a_rho, b_loc, b_rho, n_loc, n_rho = params
        qa = normal(a_loc, torch.nn.functional.softplus(a_rho))
        qb = normal(b_loc, torch.nn.functional.softplus(b_rho))
        qn = torch.distributions.LogNormal(n_loc, torch.nn.functional.softplus(n_rho))
        a, b, n = qa.rsample(), qb.rsample(), qn.rsample()
        log_p = prior.log_prob(a) + prior.log_prob(b) + half.log_prob(n) + normal(a + b * x, n).log_prob(y).sum()
        return qa.log_prob(a) + qb.log_prob(b) + qn.log_prob(n) - log_p

    return loss, params


def torch_step(make: Callable[[], tuple[Callable[[], torch.Tensor], list[torch.Tensor]]], compile: bool) -> Step:
    loss_fn, params = make()
    if compile:
        loss_fn = torch.compile(loss_fn)
    optimizer = torch.optim.Adam(params, lr=0.01)

    def step() -> object:
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


# -- library steps ------------------------------------------------------------------------

LIBS: dict[str, tuple[Any, ...]] = {
    "ember": (ember, ember.distributions, ember.infer, ember.optim, ember.infer.autoguide, ember.nn),
    "pyro": (pyro, pyro.distributions, pyro.infer, pyro.optim, pyro.infer.autoguide, pyro.nn),
}


def lib_step(workload: str, lib_name: str, elbo_name: str) -> Step:
    lib, dist, infer, optim, autoguide, nn = LIBS[lib_name]
    args: tuple[torch.Tensor, ...]
    if workload.startswith("regression"):
        args = make_data(torch.device("cpu"))
        model = make_model(lib, dist)
        guide = autoguide.AutoNormal(model) if workload.endswith("AutoNormal") else make_guide(lib, dist)
    elif workload == "bnn":
        args = bnn_data()
        model = make_bnn(lib, dist, nn)
        guide = autoguide.AutoDiagonalNormal(model)
    else:
        args = (local_data(),)
        model, guide = make_local(lib, dist)
    if elbo_name == "compiled":
        elbo = infer.CompiledTrace_ELBO()
    elif elbo_name == "jit":
        elbo = infer.JitTrace_ELBO(ignore_jit_warnings=True)
    else:
        elbo = infer.Trace_ELBO()
    svi = infer.SVI(model, guide, optim.Adam({"lr": 0.01}), loss=elbo)
    COMPILED_ELBOS[workload] = elbo if elbo_name == "compiled" else COMPILED_ELBOS.get(workload)

    def step() -> object:
        # The eager and compiled contenders of one library share the store and so train the
        # same params, each with its own optimizer: timing is all that is compared here.
        return svi.step(*args)

    return step


COMPILED_ELBOS: dict[str, Any] = {}


CONTENDERS = ("ember eager", "ember compiled", "pyro", "pyro jit", "torch eager", "torch compiled")
TORCH_LOSSES = {
    "regression mean-field": torch_regression_loss,
    "regression AutoNormal": torch_regression_loss,
    "bnn": torch_bnn_loss,
    "local": torch_local_loss,
}


def make_job(workload: str, contender: str) -> Step:
    if contender.startswith("torch"):
        return torch_step(TORCH_LOSSES[workload], compile=contender.endswith("compiled"))
    lib_name, kind = contender.split(" ", 1) if " " in contender else (contender, "eager")
    return lib_step(workload, lib_name, kind)


def warm(step: Step, steps: int = 3) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


PREDICTIVE_SAMPLES = 1000


def predictive_jobs() -> dict[str, Step]:
    """One predictive call per contender, each on its own library's trained-for-one-step guide."""
    x, y = make_data(torch.device("cpu"))
    jobs: dict[str, Step] = {}
    guides: dict[str, Any] = {}
    for lib_name in ("ember", "pyro"):
        lib, dist, infer, optim, autoguide, _ = LIBS[lib_name]
        model = make_model(lib, dist)
        guide = guides[lib_name] = autoguide.AutoNormal(model)
        infer.SVI(model, guide, optim.Adam({"lr": 0.01}), infer.Trace_ELBO()).step(x, y)
        kinds = {"": {}, " compiled": {"compile": True}} if lib_name == "ember" else {"": {}}
        for suffix, options in kinds.items():
            predictive = infer.Predictive(model, guide=guide, num_samples=PREDICTIVE_SAMPLES, parallel=True, **options)
            jobs[f"{lib_name}{suffix}"] = lambda predictive=predictive: predictive(x, None)
    store = dict(ember.get_param_store().items())
    locs = [store[f"AutoNormal.locs.{n}"].detach() for n in ("intercept", "slope", "noise")]
    scales = [store[f"AutoNormal.scales.{n}"].detach() for n in ("intercept", "slope", "noise")]

    def floor() -> object:
        shape = (PREDICTIVE_SAMPLES, 1)
        a, b, log_noise = (loc + scale * torch.randn(shape) for loc, scale in zip(locs, scales))
        return {"intercept": a, "slope": b, "noise": log_noise.exp(), "y": torch.normal(a + b * x, log_noise.exp())}

    jobs["torch eager"] = floor
    return jobs


def predictive_rows(rounds: int, inner: int) -> list[tuple[str, ...]]:
    ember.clear_param_store()
    pyro.clear_param_store()
    jobs = predictive_jobs()
    warmups = {name: warm(job) for name, job in jobs.items()}
    samples = run_interleaved(jobs, rounds, inner, warmup=2)
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    rows = []
    for name in jobs:
        t = med[name]
        rows.append((
            "predictive", name, f"{t:,.0f}", f"{t / med['torch eager']:.2f}x", f"{t / med['pyro']:.2f}x", "-",
            f"{warmups[name]:.2f}", "-",
        ))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 rounds x 10 steps")
    parser.add_argument("--workloads", nargs="*", default=[*TORCH_LOSSES, "predictive"])
    options = parser.parse_args()
    rounds, inner = (3, 10) if options.quick else (options.rounds, options.inner)
    torch.set_num_threads(1)
    ember.enable_validation(False)
    pyro.enable_validation(False)
    torch.distributions.Distribution.set_default_validate_args(False)
    warnings.simplefilter("ignore")
    print(f"{versions()}; validation off; median of {rounds} rounds x {inner} steps; load {os.getloadavg()[0]:.1f}")
    rows = [("workload", "contender", "us/step", "/torch eager", "/pyro", "/torch compiled", "warm-up s", "break-even")]
    for workload in options.workloads:
        if workload == "predictive":
            print(table([rows[0], *predictive_rows(rounds, max(inner // 4, 3))]), flush=True)
            continue
        # One workload at a time: the libraries' param stores are global, so a workload's
        # contenders are built and run together, each with its own saved store state.
        jobs: dict[str, Step] = {}
        warmups: dict[str, float] = {}
        ember.clear_param_store()
        pyro.clear_param_store()
        failed: dict[str, str] = {}
        for contender in CONTENDERS:
            try:
                job = make_job(workload, contender)
                warmups[contender] = warm(job)
                jobs[contender] = job
            except Exception as error:  # e.g. pyro-ppl's JitTrace_ELBO on a `pyro.module` encoder
                failed[contender] = type(error).__name__
                print(f"{workload}: {contender} fails: {type(error).__name__}: {str(error).splitlines()[0]}", flush=True)
        samples = run_interleaved(jobs, rounds, inner, warmup=2)
        captured = COMPILED_ELBOS[workload]._captured
        if captured is None or any(entry.eager for entry in captured.entries.values()):
            print(f"{workload}: the compiled Ember step fell back to eager")
        print(f"{workload}: Ember capture + compile {COMPILED_ELBOS[workload].compile_seconds:.2f} s", flush=True)
        med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
        for contender in CONTENDERS:
            if contender in failed:
                rows.append((workload, contender, f"fails ({failed[contender]})", *("-",) * 5))
                continue
            t = med[contender]
            even = "-"
            if contender.endswith("compiled") or contender.endswith("jit"):
                base = "torch eager" if contender.startswith("torch") else ("pyro" if contender.startswith("pyro") else "ember eager")
                gain = (med[base] - t) * 1e-6 if base in med else 0.0
                extra = warmups[contender] - warmups[base]
                even = f"{max(extra, 0.0) / gain:,.0f}" if gain > 0 else "never"
            rows.append((
                workload, contender, f"{t:,.0f}", f"{t / med['torch eager']:.2f}x", f"{t / med['pyro']:.2f}x" if "pyro" in med else "-",
                f"{t / med['torch compiled']:.2f}x", f"{warmups[contender]:.2f}", even,
            ))
        print(table(rows), flush=True)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

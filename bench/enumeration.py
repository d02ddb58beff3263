"""Enumeration step time: Ember vs pyro-ppl vs the same math written by hand in torch (the floor).

Two models, each trained by one ``SVI.step`` with ``TraceEnum_ELBO`` and ``Adam``, every
discrete latent summed out in the model (the guide is empty):

* an HMM of ``T = 100`` steps and 4 hidden states in a ``markov`` loop, with a learnable
  transition matrix (a simplex param) and learnable Gaussian emission locs; the floor runs
  the forward algorithm (one ``logsumexp`` per step), backpropagates, and takes an Adam step;
* a 3-component Gaussian mixture on 900 points with the assignments enumerated in a plate,
  learnable weights, locs and scale; the floor is one ``logsumexp`` over the components.

All contenders run in one process, interleaved round by round; the numbers are medians over
rounds of the mean time of one step within a round. A second table shows how the HMM step
time grows with ``T`` (10 to 1,000) for the three contenders.

A third table times ``CompiledTraceEnum_ELBO`` (the step captured once and compiled with
inductor) on the two models, with its capture-and-compile time (``--no-compiled`` skips it).

Run ``python bench/enumeration.py`` or ``--quick``. (Named ``enumeration`` rather than
the issue's ``enum``: a ``bench/enum.py`` shadows the standard library's ``enum`` for every
script in ``bench/``.)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.infer
import pyro.optim
import torch
import _common
from _common import run_interleaved, table, versions

import ember
import ember.distributions
import ember.infer
import ember.optim

STATES = 4
COMPONENTS = 3
POINTS = 900


def hmm_data(steps: int) -> torch.Tensor:
    torch.manual_seed(0)
    states = torch.randint(STATES, (steps,))
    return states.float() * 2.0 + torch.randn(steps)


def gmm_data() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.tensor([-3.0, 0.0, 4.0])[torch.randint(COMPONENTS, (POINTS,))] + torch.randn(POINTS)


def make_hmm(lib: Any, dist: Any) -> Callable[[torch.Tensor], None]:
    def model(data: torch.Tensor) -> None:
        trans = lib.param("trans", torch.full((STATES, STATES), 0.1) + 0.6 * torch.eye(STATES), constraint=dist.constraints.simplex)
        locs = lib.param("locs", torch.arange(STATES, dtype=torch.float) * 1.5)
        x: Any = 0
        for t in lib.markov(range(len(data))):
            x = lib.sample(f"x_{t}", dist.Categorical(trans[x]), infer={"enumerate": "parallel"})
            lib.sample(f"y_{t}", dist.Normal(locs[x], 1.0), obs=data[t])

    return model


def make_gmm(lib: Any, dist: Any) -> Callable[[torch.Tensor], None]:
    def model(data: torch.Tensor) -> None:
        weights = lib.param("weights", torch.ones(COMPONENTS) / COMPONENTS, constraint=dist.constraints.simplex)
        locs = lib.param("locs", torch.tensor([-1.0, 0.0, 1.0]))
        scale = lib.param("scale", torch.tensor(2.0), constraint=dist.constraints.positive)
        with lib.plate("data", len(data)):
            z = lib.sample("z", dist.Categorical(weights), infer={"enumerate": "parallel"})
            lib.sample("x", dist.Normal(locs[z], scale), obs=data)

    return model


COMPILE_SECONDS: dict[str, float] = {}


def make_svi_step(
    lib: Any, dist: Any, infer: Any, optim: Any, kind: str, data: torch.Tensor, compiled: bool = False
) -> Callable[[], object]:
    model = make_hmm(lib, dist) if kind == "hmm" else make_gmm(lib, dist)
    max_plate_nesting = 0 if kind == "hmm" else 1

    def guide(data: torch.Tensor) -> None:
        pass

    # Each library has its own param store, and only one job per library runs at a time
    # (the compiled contender is timed in a round of its own, see ``main``).
    lib.clear_param_store()
    elbo_class = infer.CompiledTraceEnum_ELBO if compiled else infer.TraceEnum_ELBO
    svi = infer.SVI(model, guide, optim.Adam({"lr": 0.01}), loss=elbo_class(max_plate_nesting=max_plate_nesting))
    start = time.perf_counter()
    svi.step(data)  # builds the params outside the timing
    if compiled:
        svi.step(data)  # the capture and the compile
        COMPILE_SECONDS[kind] = time.perf_counter() - start

    def step() -> object:
        return svi.step(data)

    return step


def make_torch_hmm(data: torch.Tensor) -> Callable[[], object]:
    """The floor: the forward algorithm written by hand, its backward pass, one Adam step."""
    trans_logits = torch.zeros(STATES, STATES, requires_grad=True)
    locs = (torch.arange(STATES, dtype=torch.float) * 1.5).requires_grad_()
    optimizer = torch.optim.Adam([trans_logits, locs], lr=0.01)

    def step() -> object:
        log_trans = torch.log_softmax(trans_logits, -1)
        emission = torch.distributions.Normal(locs, 1.0).log_prob(data[:, None])
        alpha = log_trans[0] + emission[0]
        for t in range(1, len(data)):
            alpha = torch.logsumexp(alpha[:, None] + log_trans, 0) + emission[t]
        loss = -torch.logsumexp(alpha, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def make_torch_gmm(data: torch.Tensor) -> Callable[[], object]:
    """The floor: the mixture log likelihood with one logsumexp, its backward pass, one Adam step."""
    logits = torch.zeros(COMPONENTS, requires_grad=True)
    locs = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    log_scale = torch.tensor(2.0).log().requires_grad_()
    optimizer = torch.optim.Adam([logits, locs, log_scale], lr=0.01)

    def step() -> object:
        log_joint = torch.log_softmax(logits, -1) + torch.distributions.Normal(locs, log_scale.exp()).log_prob(data[:, None])
        loss = -torch.logsumexp(log_joint, -1).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def cpu_time_per_call(step: Callable[[], object], inner: int) -> float:
    """Like :func:`_common.time_per_call`, in this process's CPU seconds: on a shared machine,
    time spent waiting for a core is not counted against any contender."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(inner):
            step()
        return (time.process_time() - start) / inner
    finally:
        gc.enable()


LIBS = {
    "ember": (ember, ember.distributions, ember.infer, ember.optim),
    "pyro": (pyro, pyro.distributions, pyro.infer, pyro.optim),
}


def jobs_for(kind: str, data: torch.Tensor, compiled: bool = False) -> dict[str, Callable[[], object]]:
    jobs: dict[str, Callable[[], object]] = {"torch": make_torch_hmm(data) if kind == "hmm" else make_torch_gmm(data)}
    for name, parts in LIBS.items():
        jobs[name] = make_svi_step(*parts, kind=kind, data=data)
    if compiled:
        # Built last: the eager Ember job's params are in the store until then, and the two
        # Ember jobs then share the store (timing is what is compared).
        jobs["ember compiled"] = make_svi_step(*LIBS["ember"], kind=kind, data=data, compiled=True)
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 rounds x 3 steps, T up to 300")
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    parser.add_argument("--no-compiled", action="store_true", help="skip CompiledTraceEnum_ELBO (its HMM compile takes ~1 min)")
    args = parser.parse_args()
    if not args.wall:
        _common.time_per_call = cpu_time_per_call
    clock = "wall-clock" if args.wall else "CPU"
    rounds, inner = (3, 3) if args.quick else (args.rounds, args.inner)
    torch.set_num_threads(1)

    med: dict[str, dict[str, float]] = {}
    for kind, data in (("hmm", hmm_data(100)), ("gmm", gmm_data())):
        samples = run_interleaved(jobs_for(kind, data, compiled=not args.no_compiled), rounds, inner, warmup=2)
        med[kind] = {name: statistics.median(values) * 1e3 for name, values in samples.items()}

    print(
        f"SVI.step, TraceEnum_ELBO + Adam; {clock} time, median of {rounds} rounds x {inner} steps\n"
        f"{versions()}"
    )
    rows = [("model", "ember ms", "pyro ms", "torch ms", "ember/pyro", "ember/torch")]
    labels = {"hmm": f"HMM T=100, {STATES} states", "gmm": f"GMM {COMPONENTS} x {POINTS} points"}
    for kind, m in med.items():
        e, p, t = m["ember"], m["pyro"], m["torch"]
        rows.append((labels[kind], f"{e:.2f}", f"{p:.2f}", f"{t:.2f}", f"{e / p:.2f}x", f"{e / t:.2f}x"))
    print(table(rows))
    if not args.no_compiled:
        compiled_rows = [("model", "compiled ms", "/ember", "/pyro", "/torch", "capture + compile s")]
        for kind, m in med.items():
            c = m["ember compiled"]
            compiled_rows.append((
                labels[kind], f"{c:.2f}", f"{c / m['ember']:.2f}x", f"{c / m['pyro']:.2f}x", f"{c / m['torch']:.2f}x",
                f"{COMPILE_SECONDS[kind]:.1f}",
            ))
        print("\nThe same steps with CompiledTraceEnum_ELBO (inductor)")
        print(table(compiled_rows))

    lengths = (10, 30, 100, 300) if args.quick else (10, 30, 100, 300, 1000)
    scaling = [("T", "ember ms", "pyro ms", "torch ms", "ember/pyro", "ember/torch")]
    for steps in lengths:
        n_rounds, n_inner = (3, 1) if steps >= 300 else (max(3, rounds // 3), max(1, inner // 2))
        samples = run_interleaved(jobs_for("hmm", hmm_data(steps)), n_rounds, n_inner, warmup=1)
        m = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
        e, p, t = m["ember"], m["pyro"], m["torch"]
        scaling.append((str(steps), f"{e:.2f}", f"{p:.2f}", f"{t:.2f}", f"{e / p:.2f}x", f"{e / t:.2f}x"))
    print(f"\nHMM step time against T ({STATES} states)")
    print(table(scaling))


if __name__ == "__main__":
    main()

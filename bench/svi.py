"""SVI step time: Ember vs pyro-ppl vs a hand-written torch ELBO step (the floor).

The model is the Bayesian linear regression of ``examples/svi_regression.py``: 1,000 points
and three latent globals (intercept, slope, noise). Each library runs ``SVI.step`` with
``Trace_ELBO`` and ``Adam`` for two guides: a hand-written mean-field guide (``param`` and
``sample`` statements) and ``AutoNormal``. The floor does the same one-particle
reparameterized ELBO step by hand in torch: draw the three latents, score prior, likelihood
and guide, backpropagate, and take an Adam step on the six guide parameters.

All contenders run in one process and are interleaved round by round; the numbers are
medians over rounds of the mean time of one step within a round.

Validation (Ember's, Pyro's and torch's distribution argument checks) is switched on for
all contenders, then off for all; ``--validation on|off`` runs one setting. ``--device``
puts data and params on that device.

Run ``PYTHONPATH=. python bench/svi.py`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.infer
import pyro.infer.autoguide
import pyro.optim
import torch
from _common import run_interleaved, table, versions

import ember
import ember.distributions
import ember.infer
import ember.infer.autoguide
import ember.optim

NUM_POINTS = 1000


def make_data(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(NUM_POINTS)
    y = 1.5 - 2.0 * x + 0.5 * torch.randn(NUM_POINTS)
    return x.to(device), y.to(device)


def make_model(lib: Any, dist: Any) -> Callable[[torch.Tensor, torch.Tensor], None]:
    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        intercept = lib.sample("intercept", dist.Normal(0.0, 10.0))
        slope = lib.sample("slope", dist.Normal(0.0, 10.0))
        noise = lib.sample("noise", dist.HalfNormal(5.0))
        with lib.plate("data", len(x), device=x.device):
            lib.sample("y", dist.Normal(intercept + slope * x, noise), obs=y)

    return model


def make_guide(lib: Any, dist: Any) -> Callable[[torch.Tensor, torch.Tensor], None]:
    positive = dist.constraints.positive

    def guide(x: torch.Tensor, y: torch.Tensor) -> None:
        zero, one = torch.zeros((), device=x.device), torch.ones((), device=x.device)
        for name in ("intercept", "slope"):
            loc = lib.param(f"{name}_loc", zero)
            scale = lib.param(f"{name}_scale", one, constraint=positive)
            lib.sample(name, dist.Normal(loc, scale))
        loc = lib.param("noise_loc", zero)
        scale = lib.param("noise_scale", one, constraint=positive)
        lib.sample("noise", dist.LogNormal(loc, scale))

    return guide


def make_svi_step(
    lib: Any, dist: Any, infer: Any, optim: Any, autoguide: Any, auto: bool, device: torch.device
) -> Callable[[], object]:
    x, y = make_data(device)
    model = make_model(lib, dist)
    guide = autoguide.AutoNormal(model) if auto else make_guide(lib, dist)
    svi = infer.SVI(model, guide, optim.Adam({"lr": 0.01}), loss=infer.Trace_ELBO())
    svi.step(x, y)  # builds params (and the AutoNormal prototype) outside the timing

    def step() -> object:
        # Each library has its own param store, and the two guides use different param
        # names, so the contenders never touch each other's state.
        return svi.step(x, y)

    return step


def make_torch_step(device: torch.device) -> Callable[[], object]:
    """The floor: the same mean-field ELBO step, written directly in torch."""
    x, y = make_data(device)
    params = [torch.zeros((), requires_grad=True, device=device) for _ in range(6)]
    optimizer = torch.optim.Adam(params, lr=0.01)
    normal = torch.distributions.Normal
    zero = torch.zeros((), device=device)
    prior = normal(zero, zero + 10.0)
    half = torch.distributions.HalfNormal(zero + 5.0)

    def step() -> object:
        a_loc, a_rho, b_loc, b_rho, n_loc, n_rho = params
        qa = normal(a_loc, torch.nn.functional.softplus(a_rho))
        qb = normal(b_loc, torch.nn.functional.softplus(b_rho))
        qn = torch.distributions.LogNormal(n_loc, torch.nn.functional.softplus(n_rho))
        a, b, n = qa.rsample(), qb.rsample(), qn.rsample()
        log_p = prior.log_prob(a) + prior.log_prob(b) + half.log_prob(n)
        log_p = log_p + normal(a + b * x, n).log_prob(y).sum()
        log_q = qa.log_prob(a) + qb.log_prob(b) + qn.log_prob(n)
        loss = log_q - log_p
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def run(device: torch.device, validate: bool, rounds: int, inner: int) -> dict[str, float]:
    """Median microseconds per step of every contender, with validation on or off in all of them."""
    ember.enable_validation(validate)
    pyro.enable_validation(validate)
    torch.distributions.Distribution.set_default_validate_args(validate)
    libs = {
        "ember": (ember, ember.distributions, ember.infer, ember.optim, ember.infer.autoguide),
        "pyro": (pyro, pyro.distributions, pyro.infer, pyro.optim, pyro.infer.autoguide),
    }
    ember.clear_param_store()
    pyro.clear_param_store()
    jobs: dict[str, Callable[[], object]] = {"torch": make_torch_step(device)}
    for guide_kind, auto in (("mean-field", False), ("AutoNormal", True)):
        for name, parts in libs.items():
            jobs[f"{name} {guide_kind}"] = make_svi_step(*parts, auto=auto, device=device)
    samples = run_interleaved(jobs, rounds, inner, warmup=3)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--inner", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="5 rounds x 5 steps")
    parser.add_argument("--device", default="cpu", help="torch device of data and params (default cpu)")
    parser.add_argument("--validation", choices=("on", "off", "both"), default="both")
    args = parser.parse_args()
    rounds, inner = (5, 5) if args.quick else (args.rounds, args.inner)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.validation]

    print(
        f"SVI.step, Trace_ELBO + Adam, linear regression with {NUM_POINTS} points and 3 latent globals; "
        f"median of {rounds} rounds x {inner} steps, device {device}\n"
        f"{versions()}"
    )
    rows = [("validation", "guide", "ember us", "pyro us", "torch us", "ember/pyro", "ember/torch")]
    for validate in settings:
        med = run(device, validate, rounds, inner)
        for guide_kind in ("mean-field", "AutoNormal"):
            e, p, t = med[f"ember {guide_kind}"], med[f"pyro {guide_kind}"], med["torch"]
            rows.append(
                ("on" if validate else "off", guide_kind, f"{e:,.0f}", f"{p:,.0f}", f"{t:,.0f}", f"{e / p:.2f}x", f"{e / t:.2f}x")
            )
    print(table(rows))


if __name__ == "__main__":
    main()

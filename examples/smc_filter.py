"""Particle filtering a noisy random walk: a hand-written filter next to ``SMCFilter``.

Run with ``python examples/smc_filter.py``. The model is a linear-Gaussian state-space model,
so the exact log-likelihood comes from a Kalman filter; both particle filters estimate it.
The hand-written one is the whole algorithm in a dozen lines of handlers: run the proposal
under ``trace`` inside a ``plate`` over particles, ``replay`` the model against it, weigh by
``log p - log q``, resample. Swap ``import ember as pyro`` for ``import pyro`` and the
library half runs on pyro-ppl.
"""

from __future__ import annotations

import math

import torch

import ember as pyro
import ember.distributions as dist
from ember import poutine
from ember.infer import SMCFilter
from ember.infer.smcfilter import SMCState
from ember.poutine.util import prune_subsample_sites

DRIFT, PROCESS_SD, NOISE_SD = 0.95, 0.6, 0.8


class RandomWalk:
    """z_0 ~ N(0, 1); z_t ~ N(DRIFT z_{t-1}, PROCESS_SD); y_t ~ N(z_t, NOISE_SD)."""

    def init(self, state: SMCState) -> None:
        state["z"] = pyro.sample("z_init", dist.Normal(0.0, 1.0))

    def step(self, state: SMCState, y: torch.Tensor) -> None:
        state["z"] = pyro.sample("z", dist.Normal(DRIFT * state["z"], PROCESS_SD))
        pyro.sample("y", dist.Normal(state["z"], NOISE_SD), obs=y)


class Proposal:
    """The bootstrap proposal: the model's own transition (the guide only reads the state)."""

    def init(self, state: SMCState) -> None:
        pyro.sample("z_init", dist.Normal(0.0, 1.0))

    def step(self, state: SMCState, y: torch.Tensor) -> None:
        pyro.sample("z", dist.Normal(DRIFT * state["z"], PROCESS_SD))


def simulate(num_steps: int) -> torch.Tensor:
    z, ys = torch.randn(()), []
    for _ in range(num_steps):
        z = DRIFT * z + PROCESS_SD * torch.randn(())
        ys.append(z + NOISE_SD * torch.randn(()))
    return torch.stack(ys)


def kalman_log_likelihood(ys: torch.Tensor) -> float:
    mean, var, total = 0.0, 1.0, 0.0
    for y in ys.tolist():
        mean, var = DRIFT * mean, DRIFT**2 * var + PROCESS_SD**2
        s = var + NOISE_SD**2
        total += -0.5 * (math.log(2 * math.pi * s) + (y - mean) ** 2 / s)
        mean, var = mean + var / s * (y - mean), var * NOISE_SD**2 / s
    return total


def _per_particle_log_density(tr: poutine.Trace) -> torch.Tensor:
    tr = prune_subsample_sites(tr)
    tr.compute_log_prob()
    return sum((site["log_prob"] for site in tr.nodes.values() if site["type"] == "sample"), torch.tensor(0.0))


def hand_written_filter(ys: torch.Tensor, num_particles: int) -> float:
    """Bootstrap particle filter on Ember's handlers, resampling at every step."""
    model, proposal = RandomWalk(), Proposal()
    state: dict[str, torch.Tensor] = {}
    log_evidence = 0.0
    steps = [(model.init, proposal.init, ())] + [(model.step, proposal.step, (y,)) for y in ys]
    for model_fn, proposal_fn, args in steps:
        with poutine.block(), pyro.plate("particles", num_particles, dim=-1):
            guide_trace = poutine.trace(proposal_fn).get_trace(dict(state), *args)
            model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(state, *args)
        log_weights = _per_particle_log_density(model_trace) - _per_particle_log_density(guide_trace)
        log_evidence += float(log_weights.logsumexp(0) - math.log(num_particles))
        ancestors = torch.multinomial(log_weights.softmax(0), num_particles, replacement=True)
        state = {key: value[ancestors] for key, value in state.items()}
    return log_evidence


def library_filter(ys: torch.Tensor, num_particles: int) -> float:
    smc = SMCFilter(RandomWalk(), Proposal(), num_particles=num_particles, max_plate_nesting=0)
    smc.init()
    for y in ys:
        smc.step(y)
    return float(smc.get_log_evidence())


def main() -> None:
    pyro.set_rng_seed(0)
    ys = simulate(25)
    exact = kalman_log_likelihood(ys)
    print(f"exact (Kalman) log-likelihood: {exact:8.3f}")
    for num_particles in (100, 1000):
        ours = [hand_written_filter(ys, num_particles) for _ in range(5)]
        theirs = [library_filter(ys, num_particles) for _ in range(5)]
        print(
            f"{num_particles:5d} particles: hand-written {sum(ours) / 5:8.3f} (spread {max(ours) - min(ours):.3f}), "
            f"SMCFilter {sum(theirs) / 5:8.3f} (spread {max(theirs) - min(theirs):.3f})"
        )


if __name__ == "__main__":
    main()

"""A hidden Markov model: train it with enumeration, then decode it with Viterbi.

The HMM has 3 hidden states over 100 steps, Gaussian emissions, and a learnable transition
matrix and emission locs. ``TraceEnum_ELBO`` sums the hidden states out exactly (the
``markov`` loop lets it reuse two enumeration dims for the whole chain, so the cost is linear
in the length), and ``infer_discrete(temperature=0)`` then finds the most probable state
sequence. The program prints the first and last loss and the decoding accuracy against the
true states.

Run with ``python examples/hmm.py``. Swap ``import ember as pyro`` for ``import pyro`` and
the program runs unchanged on pyro-ppl.
"""

from __future__ import annotations

import torch

import ember as pyro
import ember.distributions as dist
from ember.distributions import constraints
from ember.infer import SVI, TraceEnum_ELBO, config_enumerate, infer_discrete
from ember.optim import Adam

STATES = 3
STEPS = 100


def simulate(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """States from a sticky chain, observations around each state's loc."""
    transition = torch.full((STATES, STATES), 0.05) + 0.85 * torch.eye(STATES)
    locs = torch.tensor([-3.0, 0.0, 3.0])
    states = [0]
    for _ in range(steps - 1):
        states.append(int(torch.multinomial(transition[states[-1]], 1)))
    true_states = torch.tensor(states)
    return true_states, locs[true_states] + torch.randn(steps)


@config_enumerate
def model(data: torch.Tensor) -> list[torch.Tensor]:
    """The HMM; returns the hidden states it sampled (or was given)."""
    transition = pyro.param(
        "transition", torch.full((STATES, STATES), 0.2) + 0.4 * torch.eye(STATES), constraint=constraints.simplex
    )
    locs = pyro.param("locs", torch.tensor([-1.0, 0.0, 1.0]))
    states: list[torch.Tensor] = []
    x: torch.Tensor | int = 0
    for t in pyro.markov(range(len(data))):
        state = pyro.sample(f"x_{t}", dist.Categorical(transition[x]))
        states.append(state)
        x = state
        pyro.sample(f"y_{t}", dist.Normal(locs[x], 1.0), obs=data[t])
    return states


def guide(data: torch.Tensor) -> None:
    """Nothing to guess: every latent site is enumerated in the model."""


def main() -> None:
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    true_states, data = simulate(STEPS)

    svi = SVI(model, guide, Adam({"lr": 0.1}), TraceEnum_ELBO(max_plate_nesting=0))
    losses = [svi.step(data) for _ in range(40)]
    print(f"loss: first {losses[0]:.1f}, last {losses[-1]:.1f}")

    decoder = infer_discrete(model, first_available_dim=-1, temperature=0)
    decoded = torch.stack([s.reshape(()) for s in decoder(data)]).long()
    accuracy = (decoded == true_states).float().mean().item()
    print(f"learned locs: {[round(v, 2) for v in pyro.param('locs').tolist()]}")
    print(f"Viterbi decoding accuracy: {accuracy:.0%}")


if __name__ == "__main__":
    main()

"""Ember in one page: a model, its trace, conditioning, and a Monte Carlo ELBO.

Run with ``python examples/quickstart.py``. Swap ``import ember as pyro`` for ``import pyro``
and the program runs unchanged on pyro-ppl.
"""

from __future__ import annotations

import torch

import ember as pyro
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints


def model(data: torch.Tensor) -> torch.Tensor:
    """Data ~ Normal(loc, scale) with priors on loc and scale."""
    loc = pyro.sample("loc", dist.Normal(0.0, 10.0))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 1.0))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(loc, scale), obs=data)
    return loc


def guide(data: torch.Tensor) -> None:
    """A mean-field guide with learnable parameters."""
    loc_mean = pyro.param("loc_mean", torch.tensor(0.0))
    loc_scale = pyro.param("loc_scale", torch.tensor(1.0), constraint=constraints.positive)
    pyro.sample("loc", dist.Normal(loc_mean, loc_scale))
    pyro.sample("scale", dist.LogNormal(0.0, 0.5))


def main() -> None:
    pyro.set_rng_seed(0)
    data = torch.tensor([1.2, 0.8, 1.9, 1.4, 0.7])

    # 1. Trace the model: every site, in order, with its distribution and value.
    tr = poutine.trace(model).get_trace(data)
    tr.compute_log_prob()
    print(tr.format_shapes())
    print("sites:", list(tr.nodes))
    print(f"log joint: {float(tr.log_prob_sum()):.4f}")

    # 2. Condition the latent sites on fixed values and score the data under them.
    conditioned = poutine.condition(model, data={"loc": torch.tensor(1.0), "scale": torch.tensor(0.5)})
    ctr = poutine.trace(conditioned).get_trace(data)
    print(f"log joint at loc=1.0, scale=0.5: {float(ctr.log_prob_sum()):.4f}")

    # 3. The Monte Carlo ELBO in three lines: trace the guide, replay the model against it.
    guide_trace = poutine.trace(guide).get_trace(data)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(data)
    elbo = model_trace.log_prob_sum() - guide_trace.log_prob_sum()
    print(f"one-sample ELBO estimate: {float(torch.as_tensor(elbo).detach()):.4f}")

    # Gradients flow back to the guide's parameters through the reparameterized samples.
    torch.as_tensor(elbo).backward()
    store = pyro.get_param_store()
    for name, leaf in store.named_parameters():
        print(f"d ELBO / d {name} (unconstrained) = {float(leaf.grad):.4f}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

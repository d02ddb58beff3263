"""Bayesian logistic regression (N=1,000 points, D=10 features) sampled with NUTS.

Run with ``python examples/logistic_nuts.py``: prints each coefficient's posterior mean and
standard deviation next to the coefficient the data were drawn with.
"""

from __future__ import annotations

import torch

import ember as pyro
import ember.distributions as dist
from ember.infer import MCMC, NUTS

NUM_POINTS, NUM_FEATURES = 1000, 10


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standard normal features, true coefficients in [-2, 2], Bernoulli labels."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(NUM_POINTS, NUM_FEATURES, generator=generator)
    true_coefs = torch.linspace(-2.0, 2.0, NUM_FEATURES)
    y = torch.bernoulli(torch.sigmoid(x @ true_coefs), generator=generator)
    return x, y, true_coefs


def model(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    """y ~ Bernoulli(logits = x @ coefs), coefs ~ Normal(0, 1) each."""
    coefs = pyro.sample("coefs", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("obs", dist.Bernoulli(logits=x @ coefs), obs=y)


def main() -> None:
    torch.set_num_threads(1)
    pyro.set_rng_seed(0)
    x, y, true_coefs = make_data()
    mcmc = MCMC(NUTS(model), num_samples=1000, warmup_steps=500)
    mcmc.run(x, y)
    coefs = mcmc.get_samples()["coefs"]
    print(f"{'':>8} {'true':>7} {'mean':>7} {'std':>7}")
    for i, (truth, mean, std) in enumerate(zip(true_coefs, coefs.mean(0), coefs.std(0))):
        print(f"coefs[{i}] {float(truth):7.3f} {float(mean):7.3f} {float(std):7.3f}")
    divergences = sum(len(v) for v in mcmc.diagnostics()["divergences"].values())
    print(f"divergences: {divergences}")


if __name__ == "__main__":
    main()

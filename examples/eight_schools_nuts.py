"""The eight schools model, non-centred, sampled with NUTS in 4 vectorized chains.

Run with ``python examples/eight_schools_nuts.py``. The program is plain Pyro apart from
``chain_method="vectorized"`` (drop it to run the chains in processes as Pyro does).
"""

from __future__ import annotations

import torch

import ember as pyro
import ember.distributions as dist
from ember.infer import MCMC, NUTS

# Estimated treatment effects and their standard errors (Rubin, 1981).
Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def model(sigma: torch.Tensor, y: torch.Tensor | None = None) -> None:
    """theta_j = mu + tau * eta_j, with the school effects' noise eta drawn apart from mu, tau."""
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(sigma)):
        eta = pyro.sample("eta", dist.Normal(0.0, 1.0))
        theta = pyro.deterministic("theta", mu + tau * eta)
        pyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def main() -> None:
    torch.set_num_threads(1)
    pyro.set_rng_seed(0)
    mcmc = MCMC(NUTS(model), num_samples=1000, warmup_steps=500, num_chains=4, chain_method="vectorized")
    mcmc.run(SIGMA, y=Y)
    mcmc.summary()


if __name__ == "__main__":
    main()

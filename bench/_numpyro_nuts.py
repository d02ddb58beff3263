"""NumPyro's NUTS on the models of ``bench/mcmc.py``, run by the bench venv's Python.

Usage: ``/work/bench-venv/bin/python bench/_numpyro_nuts.py MODEL SEED NUM_CHAINS WARMUP SAMPLES``.
Prints one JSON object: wall and CPU seconds (compilation included) and the samples, so the
caller computes the effective sample size with the same function for every contender. Not an
Ember dependency: numpyro and jax live only in that separate virtual environment.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

jax.config.update("jax_platform_name", "cpu")


def eight_schools(sigma, y):  # type: ignore[no-untyped-def]
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", sigma.shape[0]):
        eta = numpyro.sample("eta", dist.Normal(0.0, 1.0))
        numpyro.sample("obs", dist.Normal(mu + tau * eta, sigma), obs=y)


def logistic(x, y):  # type: ignore[no-untyped-def]
    coefs = numpyro.sample("coefs", dist.Normal(jnp.zeros(x.shape[1]), 1.0).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(logits=x @ coefs), obs=y)


def hierarchical(group, y):  # type: ignore[no-untyped-def]
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfNormal(2.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    with numpyro.plate("groups", 50):
        eta = numpyro.sample("eta", dist.Normal(0.0, 1.0))
    theta = mu + tau * eta
    with numpyro.plate("data", y.shape[0]):
        numpyro.sample("obs", dist.Normal(theta[group], sigma), obs=y)


def main() -> None:
    name, seed, chains, warmup, samples = sys.argv[1], *map(int, sys.argv[2:6])
    data = json.load(sys.stdin)
    args = [jnp.asarray(np.asarray(a)) for a in data]
    if name == "hierarchical":
        args[0] = args[0].astype(jnp.int32)
    model = {"eight_schools": eight_schools, "logistic": logistic, "hierarchical": hierarchical}[name]
    numpyro.set_host_device_count(1)
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, num_chains=chains,
                chain_method="vectorized" if chains > 1 else "sequential", progress_bar=False)
    wall, cpu = time.perf_counter(), time.process_time()
    mcmc.run(jax.random.PRNGKey(seed), *args)
    out = {k: np.asarray(v).tolist() for k, v in mcmc.get_samples(group_by_chain=True).items()}
    jax.block_until_ready(out)
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "samples": out}))


if __name__ == "__main__":
    main()

"""Ember's NUTS and pyro-ppl's NUTS agree on the eight schools posterior within Monte Carlo error."""

from __future__ import annotations

from typing import Any

import pyro
import pyro.distributions
import pyro.infer
import torch

import ember
import ember.distributions as dist
from ember.infer import MCMC, NUTS
from ember.ops.stats import effective_sample_size

pdist: Any = pyro.distributions  # pyro is untyped
pyro_infer: Any = pyro.infer

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def _model(p: Any, d: Any) -> Any:
    def model(sigma: torch.Tensor, y: torch.Tensor) -> None:
        mu = p.sample("mu", d.Normal(0.0, 5.0))
        tau = p.sample("tau", d.HalfCauchy(5.0))
        with p.plate("J", 8):
            eta = p.sample("eta", d.Normal(0.0, 1.0))
            p.sample("obs", d.Normal(mu + tau * eta, sigma), obs=y)

    return model


def _mean_and_se(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ess = effective_sample_size(samples.double()).clamp(min=10.0)
    flat = samples.reshape((-1,) + samples.shape[2:]).double()
    return flat.mean(0), flat.std(0) / ess.sqrt()


def test_eight_schools_posterior_means_agree_with_pyro() -> None:
    ember.set_rng_seed(0)
    mine = MCMC(NUTS(_model(ember, dist)), num_samples=200, warmup_steps=150, num_chains=2,
                chain_method="vectorized", disable_progbar=True)
    mine.run(SIGMA, Y)
    pyro.set_rng_seed(0)
    theirs = pyro_infer.MCMC(pyro_infer.NUTS(_model(pyro, pdist)), num_samples=150, warmup_steps=100, disable_progbar=True)
    theirs.run(SIGMA, Y)
    ours, others = mine.get_samples(group_by_chain=True), theirs.get_samples(group_by_chain=True)
    for name in ("mu", "tau", "eta"):
        m1, se1 = _mean_and_se(ours[name])
        m2, se2 = _mean_and_se(others[name])
        assert bool(((m1 - m2).abs() < 4 * (se1**2 + se2**2).sqrt()).all()), (name, m1, m2, se1, se2)

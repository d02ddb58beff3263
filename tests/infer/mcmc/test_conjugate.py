"""NUTS and HMC posteriors of conjugate models against their analytic moments."""

from __future__ import annotations

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer.mcmc import HMC, MCMC, NUTS
from ember.ops.stats import split_gelman_rubin
from tests.infer.mcmc._helpers import assert_moments

DATA = torch.tensor([0.8, 1.9, 1.2, 0.4, 2.3, 1.1, 1.7, 0.9, 1.5, 1.0])


def normal_normal(data: torch.Tensor) -> None:
    mu = ember.sample("mu", dist.Normal(0.0, 1.0))
    with ember.plate("data", len(data)):
        ember.sample("obs", dist.Normal(mu, 1.0), obs=data)


def test_nuts_normal_normal_four_vectorized_chains_match_posterior_and_mix() -> None:
    mcmc = MCMC(NUTS(normal_normal), num_samples=500, warmup_steps=150, num_chains=4,
                chain_method="vectorized", disable_progbar=True)
    mcmc.run(DATA)
    samples = mcmc.get_samples(group_by_chain=True)["mu"]
    assert samples.shape == (4, 500)
    n = len(DATA)
    assert_moments(samples, DATA.sum() / (n + 1), torch.tensor(1.0 / (n + 1)))
    assert float(split_gelman_rubin(samples)) < 1.01


def test_hmc_beta_bernoulli_stays_in_support_and_matches_posterior() -> None:
    flips = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])

    def model(flips: torch.Tensor) -> None:
        p = ember.sample("p", dist.Beta(2.0, 3.0))
        with ember.plate("flips", len(flips)):
            ember.sample("obs", dist.Bernoulli(p), obs=flips)

    mcmc = MCMC(HMC(model, num_steps=4, step_size=0.5), num_samples=500, warmup_steps=200, disable_progbar=True)
    mcmc.run(flips)
    p = mcmc.get_samples(group_by_chain=True)["p"]
    assert bool(((p > 0) & (p < 1)).all())
    a, b = 2.0 + flips.sum(), 3.0 + len(flips) - flips.sum()
    assert_moments(p, a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1)))


def test_nuts_gamma_poisson_positive_rate_matches_posterior() -> None:
    counts = torch.tensor([3.0, 5.0, 2.0, 4.0, 6.0, 3.0])

    def model(counts: torch.Tensor) -> None:
        rate = ember.sample("rate", dist.Gamma(3.0, 2.0))
        with ember.plate("counts", len(counts)):
            ember.sample("obs", dist.Poisson(rate), obs=counts)

    mcmc = MCMC(NUTS(model), num_samples=400, warmup_steps=150, disable_progbar=True)
    mcmc.run(counts)
    rate = mcmc.get_samples(group_by_chain=True)["rate"]
    assert bool((rate > 0).all())
    shape, inv_scale = 3.0 + counts.sum(), 2.0 + len(counts)
    assert_moments(rate, shape / inv_scale, shape / inv_scale**2)


def test_nuts_dirichlet_categorical_simplex_matches_posterior() -> None:
    draws = torch.tensor([0, 2, 2, 1, 2, 0, 2, 1, 2, 2])
    alpha = torch.tensor([1.0, 2.0, 3.0])

    def model(draws: torch.Tensor) -> None:
        probs = ember.sample("probs", dist.Dirichlet(alpha))
        with ember.plate("draws", len(draws)):
            ember.sample("obs", dist.Categorical(probs), obs=draws)

    mcmc = MCMC(NUTS(model), num_samples=400, warmup_steps=150, disable_progbar=True)
    mcmc.run(draws)
    probs = mcmc.get_samples(group_by_chain=True)["probs"]
    assert probs.shape == (1, 400, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    assert bool((probs > 0).all())
    post = alpha + torch.bincount(draws, minlength=3).float()
    total = post.sum()
    assert_moments(probs, post / total, post * (total - post) / (total**2 * (total + 1)))


@pytest.mark.parametrize("kernel", ["nuts", "hmc"])
def test_correlated_gaussian_with_dense_mass_matches_covariance(kernel: str) -> None:
    torch.manual_seed(1)
    factor = torch.randn(5, 5) * 0.6
    cov = factor @ factor.T + 0.2 * torch.eye(5)
    loc = torch.arange(5.0)

    def model() -> None:
        ember.sample("x", dist.MultivariateNormal(loc, cov))

    sampler = NUTS(model, full_mass=True) if kernel == "nuts" else HMC(model, full_mass=True, trajectory_length=1.0)
    mcmc = MCMC(sampler, num_samples=400, warmup_steps=300, disable_progbar=True)
    mcmc.run()
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert_moments(x, loc, cov.diagonal())
    inverse = sampler.inverse_mass_matrix
    assert list(inverse) == [("x",)] and inverse[("x",)].shape == (5, 5)

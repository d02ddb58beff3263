"""Tests for GammaGaussianHMM and LinearHMM (hmm_linear.py)."""

from __future__ import annotations

import importlib
from typing import Any, cast

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")

HIDDEN, OBS, T = 2, 2, 4


def _spd(*shape: int) -> torch.Tensor:
    a = torch.randn(shape + (shape[-1],), dtype=torch.float64)
    return a @ a.mT + torch.eye(shape[-1], dtype=torch.float64)


def _gamma_gaussian_hmm(module: Any, p: dict[str, torch.Tensor]) -> Any:
    return module.GammaGaussianHMM(
        module.Gamma(p["alpha"], p["beta"]),
        module.MultivariateNormal(p["init_loc"], p["init_cov"]),
        p["trans_matrix"],
        module.MultivariateNormal(p["trans_loc"], p["trans_cov"]),
        p["obs_matrix"],
        module.MultivariateNormal(p["obs_loc"], p["obs_cov"]),
    )


def _gamma_params() -> dict[str, torch.Tensor]:
    f64 = torch.float64
    return {
        "alpha": torch.tensor(3.0, dtype=f64),
        "beta": torch.tensor(2.0, dtype=f64),
        "init_loc": torch.randn(HIDDEN, dtype=f64),
        "init_cov": _spd(HIDDEN),
        "trans_matrix": torch.randn(T, HIDDEN, HIDDEN, dtype=f64) * 0.5,
        "trans_loc": torch.randn(T, HIDDEN, dtype=f64),
        "trans_cov": _spd(T, HIDDEN),
        "obs_matrix": torch.randn(HIDDEN, OBS, dtype=f64),
        "obs_loc": torch.randn(OBS, dtype=f64),
        "obs_cov": _spd(OBS),
    }


def test_gamma_gaussian_hmm_matches_pyro_and_integrates_the_scale() -> None:
    p = _gamma_params()
    value = torch.randn(3, T, OBS, dtype=torch.float64)
    ours = _gamma_gaussian_hmm(dist, p)
    assert torch.allclose(ours.log_prob(value), _gamma_gaussian_hmm(pyro_dist, p).log_prob(value), atol=1e-8)
    # Integrate log p(x | s) + log p(s) over s numerically, with p(x | s) a GaussianHMM whose
    # covariances are divided by s.
    s = torch.linspace(1e-4, 12, 241, dtype=torch.float64)
    per_scale = s[:, None, None]
    given = dist.GaussianHMM(
        dist.MultivariateNormal(p["init_loc"], p["init_cov"] / per_scale, validate_args=False),
        p["trans_matrix"],
        dist.MultivariateNormal(p["trans_loc"], p["trans_cov"] / per_scale[..., None], validate_args=False),
        p["obs_matrix"],
        dist.MultivariateNormal(p["obs_loc"], p["obs_cov"] / per_scale[..., None], validate_args=False),
    )
    prior = dist.Gamma(p["alpha"], p["beta"]).log_prob(s)
    integrand = given.log_prob(value.unsqueeze(1)) + prior  # (3, scales)
    numeric = torch.trapezoid(integrand.exp(), s, dim=-1).log()
    assert torch.allclose(ours.log_prob(value), numeric, atol=2e-3)
    scale_post, state_post = ours.filter(value)
    scale_post_p, state_post_p = _gamma_gaussian_hmm(pyro_dist, p).filter(value)
    assert torch.allclose(scale_post.rate, scale_post_p.rate) and torch.allclose(state_post.loc, state_post_p.loc)


def test_gamma_gaussian_hmm_rejects_diagonal_noise() -> None:
    p = _gamma_params()
    with pytest.raises(ValueError, match="GammaGaussianHMM.*transition_dist.*MultivariateNormal"):
        dist.GammaGaussianHMM(
            dist.Gamma(p["alpha"], p["beta"]),
            dist.MultivariateNormal(p["init_loc"], p["init_cov"]),
            p["trans_matrix"],
            cast(Any, dist.Normal(p["trans_loc"], 1.0).to_event(1)),
            p["obs_matrix"],
            dist.MultivariateNormal(p["obs_loc"], p["obs_cov"]),
        )


def _linear_hmm(module: Any, obs_dist: Any, duration: int = T) -> Any:
    torch.manual_seed(0)
    return module.LinearHMM(
        module.Normal(torch.zeros(HIDDEN), 1.0).to_event(1),
        torch.eye(HIDDEN) * 0.9,
        module.StudentT(4.0, torch.zeros(HIDDEN), 0.5).to_event(1),
        torch.ones(HIDDEN, OBS),
        obs_dist,
        duration=duration,
    )


def test_linear_hmm_rsample_matches_pyro_on_the_same_seed() -> None:
    ours = _linear_hmm(dist, dist.Normal(torch.zeros(OBS), 0.3).to_event(1))
    theirs = _linear_hmm(pyro_dist, pyro_dist.Normal(torch.zeros(OBS), 0.3).to_event(1))
    torch.manual_seed(2)
    a = ours.rsample((5,))
    torch.manual_seed(2)
    b = theirs.rsample((5,))
    assert a.shape == (5, T, OBS) and torch.allclose(a, b)


def test_linear_hmm_applies_observation_transforms_and_matches_gaussian_moments() -> None:
    exp_obs = dist.TransformedDistribution(
        cast(Any, dist.Normal(torch.zeros(OBS), 0.3).to_event(1)), [torch.distributions.ExpTransform()]
    )
    d = _linear_hmm(dist, exp_obs)
    assert len(d.transforms) == 1 and (d.rsample((3,)) > 0).all()
    # With normal noise everywhere, LinearHMM and GaussianHMM are the same distribution.
    noise = dist.Normal(torch.zeros(HIDDEN), 0.5).to_event(1)
    linear = dist.LinearHMM(noise, torch.eye(HIDDEN) * 0.9, noise, torch.ones(HIDDEN, OBS), noise, duration=3)
    gaussian = dist.GaussianHMM(noise, torch.eye(HIDDEN) * 0.9, noise, torch.ones(HIDDEN, OBS), noise, duration=3)
    torch.manual_seed(0)
    x, y = linear.rsample((20000,)), gaussian.rsample((20000,))
    assert torch.allclose(x.var(0), y.var(0), rtol=0.05)
    with pytest.raises(NotImplementedError, match="log_prob"):
        linear.log_prob(x[0])
    assert linear.expand((2,)).rsample().shape == (2, 3, OBS)


def test_linear_hmm_needs_reparameterizable_noise() -> None:
    noise = dist.Normal(torch.zeros(HIDDEN), 1.0).to_event(1)
    with pytest.raises(ValueError, match="LinearHMM.*observation_dist"):
        dist.LinearHMM(noise, torch.eye(HIDDEN), noise, torch.ones(HIDDEN, 1), dist.Poisson(torch.ones(1)).to_event(1))


def test_linear_hmm_rsample_gradient_matches_finite_differences() -> None:
    f64 = torch.float64
    noise = dist.Normal(torch.zeros(HIDDEN, dtype=f64), 0.5).to_event(1)
    obs_matrix = torch.randn(HIDDEN, OBS, dtype=f64, requires_grad=True)

    def objective(matrix: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(4)
        d = dist.LinearHMM(noise, torch.eye(HIDDEN, dtype=f64) * 0.9, noise, matrix, noise, duration=3)
        result: torch.Tensor = d.rsample((5,)).pow(3).sum()
        return result

    (grad,) = torch.autograd.grad(objective(obs_matrix), [obs_matrix])
    bump = torch.zeros_like(obs_matrix)
    bump[1, 0] = 1e-6
    numeric = (objective(obs_matrix + bump) - objective(obs_matrix - bump)) / 2e-6
    assert torch.allclose(grad[1, 0], numeric, rtol=1e-5)


def test_gamma_gaussian_hmm_expand_matches_pyro_shapes() -> None:
    p = _gamma_params()
    ours, theirs = _gamma_gaussian_hmm(dist, p).expand((3,)), _gamma_gaussian_hmm(pyro_dist, p).expand((3,))
    value = torch.randn(T, OBS, dtype=torch.float64)
    assert ours.batch_shape == theirs.batch_shape == (3,)
    assert torch.allclose(ours.log_prob(value), theirs.log_prob(value), atol=1e-8)

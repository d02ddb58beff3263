"""Tests for GaussianHMM and GaussianMRF (hmm_gaussian.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")

HIDDEN, OBS, T = 2, 3, 5


def _spd(*shape: int) -> torch.Tensor:
    a = torch.randn(shape + (shape[-1],), dtype=torch.float64)
    return a @ a.mT + torch.eye(shape[-1], dtype=torch.float64)


def _params() -> dict[str, Any]:
    f64 = torch.float64
    return {
        "init_loc": torch.randn(HIDDEN, dtype=f64),
        "init_cov": _spd(HIDDEN),
        "trans_matrix": torch.randn(T, HIDDEN, HIDDEN, dtype=f64) * 0.5,
        "trans_loc": torch.randn(T, HIDDEN, dtype=f64),
        "trans_scale": torch.rand(T, HIDDEN, dtype=f64) + 0.5,
        "obs_matrix": torch.randn(HIDDEN, OBS, dtype=f64),
        "obs_loc": torch.randn(OBS, dtype=f64),
        "obs_cov": _spd(OBS),
    }


def _hmm(module: Any, p: dict[str, Any]) -> Any:
    return module.GaussianHMM(
        module.MultivariateNormal(p["init_loc"], p["init_cov"]),
        p["trans_matrix"],
        module.Normal(p["trans_loc"], p["trans_scale"]).to_event(1),
        p["obs_matrix"],
        module.MultivariateNormal(p["obs_loc"], p["obs_cov"]),
    )


def _kalman(p: dict[str, Any], value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A plain sequential Kalman filter (row-vector states): log-likelihood and final posterior."""
    mean, cov = p["init_loc"], p["init_cov"]
    loglik = torch.zeros(value.shape[:-2], dtype=value.dtype)
    for t in range(value.size(-2)):
        a = p["trans_matrix"][t]
        mean = mean @ a + p["trans_loc"][t]
        cov = a.T @ cov @ a + torch.diag(p["trans_scale"][t] ** 2)
        b = p["obs_matrix"]
        x_mean = mean @ b + p["obs_loc"]
        x_cov = b.T @ cov @ b + p["obs_cov"]
        loglik = loglik + dist.MultivariateNormal(x_mean, x_cov).log_prob(value[..., t, :])
        gain = cov @ b @ torch.linalg.inv(x_cov)
        mean = mean + (value[..., t, :] - x_mean) @ gain.T
        cov = cov - gain @ x_cov @ gain.T
    return loglik, mean, cov


def test_log_prob_equals_the_kalman_filter_and_pyro() -> None:
    p = _params()
    value = torch.randn(4, T, OBS, dtype=torch.float64)
    expected, mean, cov = _kalman(p, value)
    d = _hmm(dist, p)
    assert torch.allclose(d.log_prob(value), expected, atol=1e-8)
    assert torch.allclose(d.log_prob(value), _hmm(pyro_dist, p).log_prob(value), atol=1e-8)
    posterior = d.filter(value)
    assert torch.allclose(posterior.loc, mean, atol=1e-8)
    assert torch.allclose(posterior.covariance_matrix, cov.expand(4, HIDDEN, HIDDEN), atol=1e-8)


def test_rsample_matches_pyro_on_the_same_seed_and_has_the_right_moments() -> None:
    p = _params()
    torch.manual_seed(3)
    ours = _hmm(dist, p).rsample((3,))
    torch.manual_seed(3)
    theirs = _hmm(pyro_dist, p).rsample((3,))
    assert ours.shape == (3, T, OBS)
    assert torch.allclose(ours, theirs, atol=1e-10)
    # The first observation is N(m0 A B + c B + d, B' (A' S0 A + Q) B + R).
    torch.manual_seed(0)
    x = _hmm(dist, p).rsample((8000,))[:, 0]
    a, b = p["trans_matrix"][0], p["obs_matrix"]
    mean = (p["init_loc"] @ a + p["trans_loc"][0]) @ b + p["obs_loc"]
    cov = b.T @ (a.T @ p["init_cov"] @ a + torch.diag(p["trans_scale"][0] ** 2)) @ b + p["obs_cov"]
    assert torch.allclose(x.mean(0), mean, atol=5 * float(cov.diagonal().max().sqrt()) / 89)
    assert torch.allclose(torch.cov(x.T), cov, rtol=0.15, atol=0.15)


def test_rsample_gradients_match_finite_differences() -> None:
    p = _params()
    loc = p["obs_loc"].clone().requires_grad_()
    scale = p["trans_scale"].clone().requires_grad_()

    def objective(obs_loc: torch.Tensor, trans_scale: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(1)
        q = dict(p, obs_loc=obs_loc, trans_scale=trans_scale)
        result: torch.Tensor = _hmm(dist, q).rsample((4,)).pow(3).sum()
        return result

    grad_loc, grad_scale = torch.autograd.grad(objective(loc, scale), [loc, scale])
    eps = 1e-6
    bump = torch.zeros_like(loc)
    bump[1] = eps
    numeric = (objective(loc + bump, scale) - objective(loc - bump, scale)) / (2 * eps)
    assert torch.allclose(grad_loc[1], numeric, rtol=1e-5)
    bump = torch.zeros_like(scale)
    bump[2, 0] = eps
    numeric = (objective(loc, scale + bump) - objective(loc, scale - bump)) / (2 * eps)
    assert torch.isfinite(grad_scale).all() and torch.allclose(grad_scale[2, 0], numeric, rtol=1e-5)


def test_posterior_samples_conjugate_update_and_prefix_condition_match_pyro() -> None:
    p = _params()
    ours, theirs = _hmm(dist, p), _hmm(pyro_dist, p)
    value = torch.randn(2, T, OBS, dtype=torch.float64)
    torch.manual_seed(5)
    a = ours.rsample_posterior(value, (3,))
    torch.manual_seed(5)
    b = theirs.rsample_posterior(value, (3,))
    assert a.shape == (3, 2, T, HIDDEN) and torch.allclose(a, b, atol=1e-10)
    loc, scale = torch.randn(T, OBS, dtype=torch.float64), torch.rand(T, OBS, dtype=torch.float64) + 0.5
    new, log_normalizer = ours.conjugate_update(dist.Normal(loc, scale).to_event(2))
    new_p, log_normalizer_p = theirs.conjugate_update(pyro_dist.Normal(loc, scale).to_event(2))
    assert torch.allclose(log_normalizer, log_normalizer_p, atol=1e-8)
    assert torch.allclose(new.log_prob(value), new_p.log_prob(value), atol=1e-8)
    rest = ours.prefix_condition(value[:, :2])
    assert rest.duration == T - 2 and rest.batch_shape == (2,)
    assert torch.allclose(rest.log_prob(value[:, 2:]), theirs.prefix_condition(value[:, :2]).log_prob(value[:, 2:]), atol=1e-8)
    # The prefix and the rest factor the whole series' likelihood, by the chain rule.
    first = dist.GaussianHMM(
        dist.MultivariateNormal(p["init_loc"], p["init_cov"]),
        p["trans_matrix"][:2],
        dist.Normal(p["trans_loc"][:2], p["trans_scale"][:2]).to_event(1),
        p["obs_matrix"],
        dist.MultivariateNormal(p["obs_loc"], p["obs_cov"]),
    )
    assert torch.allclose(first.log_prob(value[:, :2]) + rest.log_prob(value[:, 2:]), ours.log_prob(value), atol=1e-8)


def test_shapes_expand_and_homogeneous_duration() -> None:
    noise = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    d = dist.GaussianHMM(noise, torch.eye(2), noise, torch.ones(2, 1), dist.Normal(torch.zeros(1), 1.0).to_event(1))
    assert d.duration is None and d.event_shape == (1, 1)
    assert d.log_prob(torch.zeros(7, 1)).shape == ()
    e = dist.GaussianHMM(noise, torch.eye(2), noise, torch.ones(2, 1), dist.Normal(torch.zeros(1), 1.0).to_event(1), duration=4)
    assert e.expand((3,)).rsample((2,)).shape == (2, 3, 4, 1)
    with pytest.raises(ValueError, match="needs a duration"):
        d.rsample()


def test_bad_arguments_name_the_argument() -> None:
    noise = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    obs = dist.Normal(torch.zeros(1), 1.0).to_event(1)
    with pytest.raises(ValueError, match="GaussianHMM.*transition_dist.*Normal"):
        dist.GaussianHMM(noise, torch.eye(2), dist.Normal(torch.zeros(2), 1.0), torch.ones(2, 1), obs)
    with pytest.raises(ValueError, match=r"transition_matrix.shape\[-2:\] == \(2, 2\).*\(3, 3\)"):
        dist.GaussianHMM(noise, torch.eye(3), noise, torch.ones(2, 1), obs)


def test_gaussian_mrf_log_prob_matches_pyro_and_the_dense_joint() -> None:
    f64 = torch.float64
    init = dist.MultivariateNormal(torch.randn(HIDDEN, dtype=f64), _spd(HIDDEN))
    trans = dist.MultivariateNormal(torch.randn(T, 2 * HIDDEN, dtype=f64), _spd(T, 2 * HIDDEN))
    obs = dist.MultivariateNormal(torch.randn(T, HIDDEN + OBS, dtype=f64), _spd(T, HIDDEN + OBS))
    value = torch.randn(3, T, OBS, dtype=f64)
    ours = dist.GaussianMRF(init, trans, obs)
    theirs = pyro_dist.GaussianMRF(
        pyro_dist.MultivariateNormal(init.loc, init.covariance_matrix),
        pyro_dist.MultivariateNormal(trans.loc, trans.covariance_matrix),
        pyro_dist.MultivariateNormal(obs.loc, obs.covariance_matrix),
    )
    assert ours.event_shape == (T, OBS)
    assert torch.allclose(ours.log_prob(value), theirs.log_prob(value), atol=1e-8)
    assert ours.expand((4, 3)).log_prob(value).shape == (4, 3)

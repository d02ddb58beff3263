"""SVGD: particles reach a Gaussian target's moments, steps equal Pyro's, and misuse is refused."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import SVGD, IMQSteinKernel, RBFSteinKernel
from ember.optim import Adam
from tests.parity._backends import Backend, run_both

MEAN = torch.tensor([1.0, -1.0])
COV = torch.tensor([[1.0, 0.6], [0.6, 2.0]])


def gaussian() -> None:
    ember.sample("x", dist.MultivariateNormal(MEAN, COV))


def _run(mode: str, kernel: Any, n: int = 48, steps: int = 120) -> torch.Tensor:
    svgd = SVGD(gaussian, kernel, Adam({"lr": 0.1}), num_particles=n, max_plate_nesting=0, mode=mode)
    for _ in range(steps):
        svgd.step()
    x = svgd.get_named_particles()["x"].detach()
    assert x.shape == (n, 2)
    return x


def _correlation(cov: torch.Tensor) -> float:
    return (cov[0, 1] / (cov[0, 0] * cov[1, 1]).sqrt()).item()


def test_multivariate_particles_match_the_mean_and_correlation_of_a_gaussian_target() -> None:
    x = _run("multivariate", IMQSteinKernel(bandwidth_factor=2.0))
    # Particles interact, so they do better than iid draws: 3 iid standard errors is loose.
    assert torch.allclose(x.mean(0), MEAN, atol=3 * (2.0 / 48) ** 0.5)
    cov = torch.cov(x.T)
    assert _correlation(cov) == pytest.approx(_correlation(COV), abs=0.05)
    # With finitely many particles the product kernel's repulsion is too weak in the tails and
    # the spread shrinks (here by about 10%), uniformly in every direction.
    assert torch.allclose(cov.diagonal(), COV.diagonal(), rtol=0.15)
    assert bool((cov.diagonal() < COV.diagonal()).all())


def test_univariate_particles_match_the_mean_and_marginal_variances_of_a_gaussian_target() -> None:
    x = _run("univariate", RBFSteinKernel())
    assert torch.allclose(x.mean(0), MEAN, atol=3 * (2.0 / 48) ** 0.5)
    assert torch.allclose(torch.cov(x.T).diagonal(), COV.diagonal(), rtol=0.05)


def _svgd_program(mode: str) -> Any:
    def program(b: Backend) -> torch.Tensor:
        def model() -> None:
            with b.pyro.plate("N", 3):
                b.pyro.sample("s", b.dist.LogNormal(0.0, 1.0))
            b.pyro.sample("x", b.dist.Normal(0.0, 2.0))

        kernel = b.infer.RBFSteinKernel(bandwidth_factor=0.7) if mode == "multivariate" else b.infer.IMQSteinKernel()
        svgd = b.infer.SVGD(model, kernel, b.pyro.optim.Adam({"lr": 0.05}), num_particles=5, max_plate_nesting=1, mode=mode)
        grads = [svgd.step() for _ in range(3)]
        named = svgd.get_named_particles()
        assert sorted(named) == ["s", "x"] and all(g.keys() == {"s", "x"} for g in grads)
        return torch.cat([named["s"].reshape(5, -1), named["x"].reshape(5, -1)], -1).detach()

    return program


@pytest.mark.parametrize("mode", ["multivariate", "univariate"])
def test_steps_equal_pyros_on_the_same_seed(mode: str) -> None:
    ours, theirs = run_both(_svgd_program(mode), seed=2)
    assert ours.shape == (5, 4) and bool((ours[:, :3] > 0).all())
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_model_without_latent_sites_is_refused_and_creates_no_particles() -> None:
    def model() -> None:
        ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.tensor(0.5))

    svgd = SVGD(model, RBFSteinKernel(), Adam({"lr": 0.1}), num_particles=3, max_plate_nesting=0)
    with pytest.raises(RuntimeError, match="found no latent variables"):
        svgd.step()
    assert "svgd_particles" not in ember.get_param_store()


def test_a_discrete_latent_site_is_refused_naming_it() -> None:
    def model() -> None:
        ember.sample("k", dist.Bernoulli(0.5))

    svgd = SVGD(model, RBFSteinKernel(), Adam({"lr": 0.1}), num_particles=3, max_plate_nesting=0)
    with pytest.raises(ValueError, match="'k'"):
        svgd.step()
    assert list(ember.get_param_store()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_particles": 1}, "Must use at least two particles"),
        ({"kernel": object()}, "Must provide a valid SteinKernel"),
        ({"optim": torch.optim.Adam}, "Must provide a valid Pyro optimizer"),
        ({"mode": "joint"}, "mode must be one of"),
    ],
)
def test_bad_arguments_raise_pyros_assertion_error(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"kernel": RBFSteinKernel(), "optim": Adam({}), "num_particles": 3, "max_plate_nesting": 0}
    args.update(kwargs)
    with pytest.raises(AssertionError, match=match):
        SVGD(gaussian, **args)


def test_kernel_hyperparameters_are_checked() -> None:
    with pytest.raises(AssertionError, match="alpha must be positive"):
        IMQSteinKernel(alpha=0.0)
    with pytest.raises(AssertionError, match="beta must be negative"):
        IMQSteinKernel(beta=0.5)
    with pytest.raises(AssertionError, match="bandwidth_factor must be positive"):
        RBFSteinKernel(bandwidth_factor=-1.0)


def test_rbf_kernel_gradient_is_minus_the_autograd_derivative() -> None:
    x = torch.tensor([[0.0, 1.0], [1.0, -1.0], [3.0, 0.5]])
    kernel = RBFSteinKernel()
    log_k, grad = kernel.log_kernel_and_grad(x)
    h = torch.tensor([4.0, 2.25]) / torch.log(torch.tensor(4.0))  # medians of (1, 9, 4) and (4, .25, 2.25)
    leaf = x.clone().requires_grad_()
    for n in range(3):
        for m in range(3):
            expected = -(leaf[m] - leaf[n]).pow(2) / h
            assert torch.allclose(log_k[n, m], expected.detach())
            (d,) = torch.autograd.grad(expected.sum(), [leaf])
            assert torch.allclose(grad[n, m], -d[m])

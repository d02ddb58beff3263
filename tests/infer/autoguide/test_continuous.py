"""The joint (packed-latent) autoguides: parity with pyro-ppl, posteriors, errors, persistence."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.autoguide import (
    AutoDiagonalNormal,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
)
from tests.infer.autoguide._models import (
    DATA,
    MODELS,
    assert_same_store,
    autoguide,
    elbo_loss,
    fit,
    mixed,
    normal_normal,
    reload_without_store,
    store_state,
)
from tests.parity._backends import EMBER, Backend, assert_same_error, assert_traces_match, run_both

GUIDES = ["AutoDiagonalNormal", "AutoMultivariateNormal", "AutoLowRankMultivariateNormal", "AutoLaplaceApproximation"]


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("guide_name", GUIDES)
def test_guide_traces_params_and_values_match_pyro(guide_name: str, model_name: str) -> None:
    def program(backend: Backend) -> Any:
        guide = getattr(autoguide(backend), guide_name)(MODELS[model_name](backend))
        first = backend.poutine.trace(guide).get_trace(DATA)
        second = backend.poutine.trace(guide).get_trace(DATA)
        return first, second, store_state(backend), sorted(name for name, _ in guide.named_parameters())

    ours, theirs = run_both(program)
    assert_traces_match(ours[0], theirs[0])
    assert_traces_match(ours[1], theirs[1])
    assert_same_store(ours[2], theirs[2])
    assert ours[3] == theirs[3]


def test_param_names_and_shapes() -> None:
    AutoMultivariateNormal(mixed(EMBER))(DATA)
    AutoLowRankMultivariateNormal(mixed(EMBER), rank=2)(DATA)
    AutoDiagonalNormal(mixed(EMBER))(DATA)
    shapes = {name: tuple(value.shape) for name, value in ember.get_param_store().items()}
    # Latent size 1 + 1 + 2 + 4: unlike AutoNormal, the packed guides keep the prototype's
    # subsample size for local latents, as in Pyro.
    assert shapes == {
        "AutoMultivariateNormal.loc": (8,),
        "AutoMultivariateNormal.scale": (8,),
        "AutoMultivariateNormal.scale_tril": (8, 8),
        "AutoLowRankMultivariateNormal.loc": (8,),
        "AutoLowRankMultivariateNormal.scale": (8,),
        "AutoLowRankMultivariateNormal.cov_factor": (8, 2),
        "AutoDiagonalNormal.loc": (8,),
        "AutoDiagonalNormal.scale": (8,),
    }


def test_trace_has_the_packed_latent_then_point_masses() -> None:
    guide = AutoDiagonalNormal(mixed(EMBER))
    tr = poutine.trace(guide).get_trace(DATA)
    samples = [name for name, site in tr.nodes.items() if site["type"] == "sample"]
    assert samples == ["_AutoDiagonalNormal_latent", "N", "a", "s", "p", "z"]
    latent = tr.nodes["_AutoDiagonalNormal_latent"]
    assert latent["infer"] == {"is_auxiliary": True} and latent["value"].shape == (8,)
    assert torch.allclose(tr.nodes["s"]["value"], latent["value"][1].exp())
    assert tr.nodes["z"]["value"].shape == (4,)


@pytest.mark.parametrize("guide_name", GUIDES)
def test_median_and_quantiles_match_pyro(guide_name: str) -> None:
    def program(backend: Backend) -> Any:
        if guide_name == "AutoLaplaceApproximation":  # needs a positive definite Hessian
            laplace = autoguide(backend).AutoLaplaceApproximation(normal_normal(backend))
            laplace(DATA)
            gaussian = laplace.laplace_approximation(DATA)
            return gaussian.median(DATA), gaussian.quantiles([0.25, 0.75], DATA)
        guide = getattr(autoguide(backend), guide_name)(mixed(backend))
        guide(DATA)
        return guide.median(DATA), guide.quantiles([0.25, 0.5, 0.75], DATA)

    ours, theirs = run_both(program)
    for got, expected in zip(ours, theirs):
        assert sorted(got) == sorted(expected)
        for name in expected:
            assert torch.allclose(got[name], expected[name], atol=1e-5), name


def test_diagonal_median_and_quantiles_are_the_mapped_normal_marginals() -> None:
    guide = AutoDiagonalNormal(mixed(EMBER), init_scale=0.5)
    guide(DATA)
    median = guide.median(DATA)
    loc = guide.loc.detach()
    assert median["s"].item() == pytest.approx(loc[1].exp().item())
    quantiles = guide.quantiles([0.1, 0.9], DATA)
    spread = 1.2815516 * 0.5
    assert quantiles["a"].tolist() == pytest.approx([loc[0].item() - spread, loc[0].item() + spread], rel=1e-5)
    assert quantiles["p"].shape == (2, 3) and quantiles["z"].shape == (2, 4)


def test_transformed_form_of_the_posterior_matches_get_posterior() -> None:
    for guide in (AutoDiagonalNormal(mixed(EMBER)), AutoMultivariateNormal(mixed(EMBER))):
        guide(DATA)
        direct: Any = guide.get_posterior()
        transformed = dist.TransformedDistribution(guide.get_base_dist(), guide.get_transform())
        value = direct.sample()
        assert torch.allclose(transformed.log_prob(value), direct.log_prob(value), atol=1e-5)
        inverse = guide.get_transform().inv(value)
        assert torch.allclose(guide.get_transform()(inverse), value, atol=1e-5)


def test_guide_under_an_outer_particle_plate_batches_the_latent() -> None:
    def program(backend: Backend) -> Any:
        guide = backend.pyro.infer.autoguide.AutoDiagonalNormal(mixed(backend))
        guide(DATA)
        with backend.pyro.plate("particles", 3, dim=-2):
            return backend.poutine.trace(guide).get_trace(DATA)

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)
    assert ours.nodes["p"]["value"].shape == (3, 1, 3) and ours.nodes["z"]["value"].shape == (3, 4)


def test_laplace_approximation_matches_pyro_and_the_exact_posterior() -> None:
    def program(backend: Backend) -> Any:
        guide = backend.pyro.infer.autoguide.AutoLaplaceApproximation(normal_normal(backend))
        guide(DATA)
        with torch.no_grad():
            guide.loc.fill_(DATA.sum().item() / (len(DATA) + 1))  # the MAP point
        gaussian = guide.laplace_approximation(DATA)
        return gaussian.loc, gaussian.scale, gaussian.scale_tril, dict(gaussian.named_buffers())

    ours, theirs = run_both(program)
    for got, expected in zip(ours[:3], theirs[:3]):
        assert torch.allclose(got, expected)
    assert sorted(ours[3]) == ["loc", "scale", "scale_tril"]
    # A conjugate model: the Laplace approximation is exact.
    assert ours[1].item() == pytest.approx((1.0 / (len(DATA) + 1)) ** 0.5, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Errors


def test_no_latent_variables_raises_as_in_pyro() -> None:
    def program(backend: Backend) -> None:
        def model() -> None:
            backend.pyro.sample("obs", backend.dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

        backend.pyro.infer.autoguide.AutoDiagonalNormal(model)()

    ours, _ = assert_same_error(program)
    assert str(ours) == "AutoDiagonalNormal found no latent variables; Use an empty guide instead"


@pytest.mark.parametrize("rank", [0, -2, 1.5])
def test_bad_rank_raises_as_in_pyro(rank: Any) -> None:
    def program(backend: Backend) -> None:
        backend.pyro.infer.autoguide.AutoLowRankMultivariateNormal(normal_normal(backend), rank=rank)

    ours, _ = assert_same_error(program)
    assert str(ours) == f"Expected rank > 0 but got {rank}"


# ---------------------------------------------------------------------------------------------
# Persistence and fitting


@pytest.mark.parametrize("guide_name", GUIDES[:3])
def test_torch_save_round_trip_samples_the_same_posterior(guide_name: str) -> None:
    guide = getattr(autoguide(EMBER), guide_name)(mixed(EMBER))
    guide(DATA)
    loaded = reload_without_store(guide)
    torch.manual_seed(11)
    expected = guide(DATA)
    torch.manual_seed(11)
    got = loaded(DATA)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    assert sorted(loaded.state_dict()) == sorted(guide.state_dict())


def test_multivariate_normal_fits_a_correlated_posterior() -> None:
    # y ~ N(x1 + x2, 0.5) with x ~ N(0, I): the posterior of x is Gaussian with covariance
    # (I + 4 * ones) ^ -1, whose off-diagonal is negative.
    def model() -> None:
        x = ember.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        ember.sample("y", dist.Normal(x.sum(-1), 0.5), obs=torch.tensor(1.0))

    guide = AutoMultivariateNormal(model)
    guide()

    def loss() -> torch.Tensor:
        with ember.plate("particles", 64, dim=-1):
            return elbo_loss(model, guide) / 64

    fit(guide, loss, steps=200)
    precision = torch.eye(2) + 4.0 * torch.ones(2, 2)
    covariance = torch.linalg.inv(precision)
    mean = covariance @ torch.tensor([4.0, 4.0])  # y / 0.5**2 per coordinate
    with torch.no_grad():
        scale_tril = guide.scale[..., None] * guide.scale_tril
        fitted = scale_tril @ scale_tril.T
    assert torch.allclose(guide.loc.detach(), mean, atol=0.06)
    assert torch.allclose(fitted, covariance, atol=0.05)
    assert fitted[0, 1] < -0.05  # the correlation is learned, not just the marginals

"""``AutoDelta`` and ``AutoNormal``: parity with pyro-ppl, posteriors, errors, persistence, fitting."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.autoguide import AutoDelta, AutoNormal, init_to_value
from ember.poutine import runtime
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

GUIDES = ["AutoNormal", "AutoDelta"]


def _trace_guide(guide_name: str, model_name: str, **kwargs: Any) -> Any:
    def program(backend: Backend) -> Any:
        guide = getattr(autoguide(backend), guide_name)(MODELS[model_name](backend), **kwargs)
        first = backend.poutine.trace(guide).get_trace(DATA)
        second = backend.poutine.trace(guide).get_trace(DATA)
        return first, second, store_state(backend), sorted(name for name, _ in guide.named_parameters())

    return program


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("guide_name", GUIDES)
def test_guide_traces_params_and_values_match_pyro(guide_name: str, model_name: str) -> None:
    ours, theirs = run_both(_trace_guide(guide_name, model_name))
    assert_traces_match(ours[0], theirs[0])
    assert_traces_match(ours[1], theirs[1])
    assert_same_store(ours[2], theirs[2])
    assert ours[3] == theirs[3]


@pytest.mark.parametrize(
    "init_name, init_kwargs",
    [
        ("init_to_median", {}),
        ("init_to_mean", {}),
        ("init_to_median", {"num_samples": 5}),
        ("init_to_value", {"values": {"a": torch.tensor(0.7), "s": torch.tensor(2.0)}}),
        ("init_to_sample", {}),
        ("init_to_uniform", {"radius": 0.5}),
    ],
    ids=["median", "mean", "median5", "value", "sample", "uniform"],
)
@pytest.mark.parametrize("guide_name", GUIDES)
def test_initial_params_match_pyro(guide_name: str, init_name: str, init_kwargs: dict[str, Any]) -> None:
    def program(backend: Backend) -> Any:
        strategies = autoguide(backend)
        init = getattr(strategies, init_name)
        if init_kwargs:
            init = init(**init_kwargs)
        guide = getattr(strategies, guide_name)(mixed(backend), init_loc_fn=init)
        guide(DATA)
        return store_state(backend)

    ours, theirs = run_both(program)
    assert_same_store(ours, theirs)


def test_autonormal_names_and_shapes() -> None:
    guide = AutoNormal(mixed(EMBER))
    guide(DATA)
    shapes = {name: tuple(value.shape) for name, value in ember.get_param_store().items()}
    assert shapes == {
        "AutoNormal.locs.a": (),
        "AutoNormal.scales.a": (),
        "AutoNormal.locs.s": (),
        "AutoNormal.scales.s": (),
        "AutoNormal.locs.p": (2,),  # the simplex's unconstrained space has one dim less
        "AutoNormal.scales.p": (2,),
        "AutoNormal.locs.z": (10,),  # the full plate size, not the subsample size
        "AutoNormal.scales.z": (10,),
    }
    assert guide.scales.a.item() == pytest.approx(0.1)


def test_autonormal_samples_two_sites_per_latent() -> None:
    guide = AutoNormal(mixed(EMBER))
    tr = poutine.trace(guide).get_trace(DATA)
    aux = tr.nodes["s_unconstrained"]
    assert aux["infer"] == {"is_auxiliary": True} and type(aux["fn"]).__name__ == "Normal"
    site = tr.nodes["s"]
    point: Any = site["fn"]
    assert type(point).__name__ == "Delta"
    assert torch.allclose(site["value"], aux["value"].exp())
    # The point mass carries log |d unconstrained / d value| = -log(value) for exp.
    assert torch.allclose(point.log_density, -aux["value"])
    assert torch.allclose(point.log_prob(site["value"]), -aux["value"])


def test_autonormal_skips_the_jacobian_when_masked_off() -> None:
    guide = AutoNormal(mixed(EMBER))
    guide(DATA)
    with poutine.trace() as tracer, poutine.mask(mask=False):
        guide(DATA)
    point: Any = tracer.trace.nodes["s"]["fn"]
    assert torch.equal(point.log_density, torch.tensor(0.0))


def test_autonormal_median_and_quantiles() -> None:
    guide = AutoNormal(mixed(EMBER), init_loc_fn=init_to_value(values={"s": torch.tensor(2.0)}))
    guide(DATA)
    median = guide.median()
    assert median["s"].item() == pytest.approx(2.0)
    assert median["p"].shape == (3,) and median["p"].sum().item() == pytest.approx(1.0)
    quantiles = guide.quantiles([0.5, 0.975])
    assert quantiles["s"].shape == (2,) and quantiles["z"].shape == (2, 10)
    assert quantiles["s"][0].item() == pytest.approx(2.0)
    assert quantiles["s"][1].item() == pytest.approx(2.0 * math.exp(1.959964 * 0.1), rel=1e-5)


def test_median_and_quantiles_match_pyro() -> None:
    def program(backend: Backend) -> Any:
        strategies = autoguide(backend)
        normal = strategies.AutoNormal(mixed(backend), init_scale=0.3)
        normal(DATA)
        delta = strategies.AutoDelta(mixed(backend))
        return normal.median(), normal.quantiles([0.1, 0.5, 0.9]), delta.median(DATA)

    ours, theirs = run_both(program)
    for got, expected in zip(ours, theirs):
        assert sorted(got) == sorted(expected)
        for name in expected:
            assert torch.allclose(got[name], expected[name], atol=1e-6), name


def test_autodelta_params_live_in_the_support() -> None:
    guide = AutoDelta(mixed(EMBER))
    guide(DATA)
    store = ember.get_param_store()
    assert store._constraints["AutoDelta.s"] == dist.LogNormal(0.0, 1.0).support
    assert store["AutoDelta.p"].shape == (3,) and store["AutoDelta.z"].shape == (10,)
    assert guide.median(DATA)["p"].sum().item() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Errors


def test_sequential_plates_are_rejected_as_in_pyro() -> None:
    def program(backend: Backend) -> None:
        pyro, d = backend.pyro, backend.dist

        def model() -> None:
            for i in pyro.plate("seq", 2):
                pyro.sample(f"x{i}", d.Normal(0.0, 1.0))

        autoguide(backend).AutoNormal(model)()

    ours, _ = assert_same_error(program)
    assert str(ours) == "AutoGuide does not support sequential pyro.plate"
    assert runtime.get_stack() == ()


@pytest.mark.parametrize("guide_name", ["AutoNormal", "AutoDiagonalNormal", "AutoMultivariateNormal"])
@pytest.mark.parametrize("init_scale", [0.0, -1.0, 1])
def test_bad_init_scale_raises_as_in_pyro(guide_name: str, init_scale: Any) -> None:
    def program(backend: Backend) -> None:
        getattr(autoguide(backend), guide_name)(normal_normal(backend), init_scale=init_scale)

    ours, _ = assert_same_error(program)
    assert str(ours) == f"Expected init_scale > 0. but got {init_scale}"


@pytest.mark.parametrize("guide_name", GUIDES)
def test_discrete_site_gets_pyro_advice_naming_it(guide_name: str) -> None:
    def program(backend: Backend) -> None:
        pyro, d = backend.pyro, backend.dist

        def model() -> None:
            pyro.sample("loc", d.Normal(0.0, 1.0))
            pyro.sample("coin", d.Bernoulli(0.5))

        getattr(autoguide(backend), guide_name)(model)()

    ours, _ = assert_same_error(program)
    assert isinstance(ours, ValueError)
    assert "Continuous inference cannot handle discrete sample site 'coin'" in str(ours)


def test_a_failing_model_leaves_the_store_and_stack_clean() -> None:
    calls = []

    def model() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0))
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    guide = AutoNormal(model)
    with pytest.raises(RuntimeError, match="boom"):
        guide()
    assert guide.prototype_trace is None and list(ember.get_param_store()) == []
    guide()  # the next call sets the guide up normally
    assert list(ember.get_param_store()) == ["AutoNormal.locs.x", "AutoNormal.scales.x"]


def test_create_plates_returning_a_non_plate_raises_as_in_pyro() -> None:
    def program(backend: Backend) -> None:
        guide = autoguide(backend).AutoNormal(mixed(backend), create_plates=lambda data: [None])
        guide(DATA)

    ours, _ = assert_same_error(program)
    assert str(ours) == "create_plates() returned a non-plate"


def _subsampled_model(data: torch.Tensor, idx: torch.Tensor) -> None:
    with ember.plate("N", len(data), subsample=idx):
        ember.sample("z", dist.Normal(0.0, 1.0))


def _subsample_plates(data: torch.Tensor, idx: torch.Tensor) -> Any:
    """``create_plates`` for :func:`_subsampled_model`: its plate, subsampled as in the call."""
    return ember.plate("N", len(data), subsample=idx)


def test_an_error_after_setup_keeps_the_trained_values() -> None:
    guide = AutoNormal(_subsampled_model, create_plates=_subsample_plates)
    guide(DATA, torch.tensor([0, 1]))
    with torch.no_grad():
        guide.locs.z_unconstrained.fill_(0.75)
    before = {name: value.detach().clone() for name, value in ember.get_param_store().items()}
    with pytest.raises(IndexError, match="index out of range"):
        guide(DATA, torch.tensor([0, 12]))  # a subsample index past the plate's end
    assert runtime.get_stack() == () and runtime._DIM_ALLOCATOR._stack == []
    after = dict(ember.get_param_store().items())
    assert list(after) == list(before)
    assert all(torch.equal(after[name].detach(), before[name]) for name in before)


# ---------------------------------------------------------------------------------------------
# Plates


def test_create_plates_supplies_the_subsampling_plate() -> None:
    guide = AutoNormal(_subsampled_model, create_plates=_subsample_plates)
    tr = poutine.trace(guide).get_trace(DATA, torch.tensor([2, 5]))
    assert torch.equal(tr.nodes["N"]["value"], torch.tensor([2, 5]))
    assert tr.nodes["z"]["value"].shape == (2,) and tr.nodes["z"]["scale"] == 5.0
    locs = ember.get_param_store()["AutoNormal.locs.z"]
    assert locs.shape == (10,)
    aux: Any = tr.nodes["z_unconstrained"]["fn"]
    assert torch.equal(aux.loc, locs[[2, 5]])


# ---------------------------------------------------------------------------------------------
# Persistence


@pytest.mark.parametrize("guide_name", GUIDES)
def test_torch_save_round_trip_samples_the_same_posterior(guide_name: str) -> None:
    guide = getattr(autoguide(EMBER), guide_name)(mixed(EMBER))
    guide(DATA)
    loaded = reload_without_store(guide)
    assert guide.model is not None  # saving does not strip the live guide
    torch.manual_seed(7)
    expected = guide(DATA)
    torch.manual_seed(7)
    got = loaded(DATA)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


def test_state_dict_round_trip_restores_the_posterior() -> None:
    guide = AutoNormal(mixed(EMBER))
    guide(DATA)
    with torch.no_grad():
        guide.locs.a_unconstrained.fill_(1.25)
    state = guide.state_dict()
    assert sorted(state) == sorted(f"{kind}.{site}_unconstrained" for kind in ("locs", "scales") for site in "aspz")
    ember.clear_param_store()
    fresh = AutoNormal(mixed(EMBER))
    fresh(DATA)
    fresh.load_state_dict(state)
    assert fresh.median()["a"].item() == pytest.approx(1.25)
    torch.manual_seed(3)
    expected = guide(DATA)
    torch.manual_seed(3)
    got = fresh(DATA)
    assert all(torch.equal(got[name], expected[name]) for name in expected)


# ---------------------------------------------------------------------------------------------
# Fitting


def _particle_loss(model: Any, guide: Any, particles: int) -> torch.Tensor:
    """``-ELBO`` averaged over ``particles`` draws, vectorized in a plate left of the model's."""
    with ember.plate("particles", particles, dim=-2):
        return elbo_loss(model, guide, DATA) / particles


def test_autonormal_fits_the_normal_normal_posterior() -> None:
    model = normal_normal(EMBER)
    guide = AutoNormal(model)
    guide(DATA)
    fit(guide, lambda: _particle_loss(model, guide, 64), steps=250)
    n = len(DATA)
    posterior_loc, posterior_scale = DATA.sum().item() / (n + 1), (1.0 / (n + 1)) ** 0.5
    assert guide.median()["loc"].item() == pytest.approx(posterior_loc, abs=0.02)
    assert guide.scales.loc.item() == pytest.approx(posterior_scale, abs=0.02)


def test_autodelta_fits_the_map_point() -> None:
    model = normal_normal(EMBER)
    guide = AutoDelta(model)
    guide(DATA)
    fit(guide, lambda: elbo_loss(model, guide, DATA), steps=150)
    assert guide.median(DATA)["loc"].item() == pytest.approx(DATA.sum().item() / (len(DATA) + 1), abs=1e-3)


@pytest.mark.parametrize("guide_name", GUIDES)
def test_svi_losses_and_params_match_pyro(guide_name: str) -> None:
    def program(backend: Backend) -> Any:
        model = mixed(backend)
        guide = getattr(autoguide(backend), guide_name)(model)
        optim = backend.pyro.optim.Adam({"lr": 0.02})
        svi = backend.infer.SVI(model, guide, optim, backend.infer.Trace_ELBO())
        losses = [svi.step(DATA) for _ in range(10)]
        return losses, store_state(backend)

    ours, theirs = run_both(program)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-4, abs=1e-4)
    assert_same_store(ours[1], theirs[1])

"""Init strategies and ``InitMessenger``: values equal to pyro-ppl's, fallbacks, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.autoguide import (
    init_to_feasible,
    init_to_generated,
    init_to_mean,
    init_to_median,
    init_to_sample,
    init_to_value,
)
from ember.infer.autoguide.initialization import InitMessenger
from ember.poutine.runtime import effectful
from tests.infer.autoguide._models import autoguide
from tests.parity._backends import Backend, assert_same_error, run_both

STRATEGIES: list[tuple[str, dict[str, Any]]] = [
    ("init_to_feasible", {}),
    ("init_to_sample", {}),
    ("init_to_median", {}),
    ("init_to_median", {"num_samples": 4}),
    ("init_to_mean", {}),
    ("init_to_uniform", {}),
    ("init_to_uniform", {"radius": 0.1}),
    ("init_to_value", {"values": {"b": torch.tensor(0.25)}}),
]


def _sites(backend: Backend) -> list[tuple[str, Any]]:
    d = backend.dist
    return [
        ("a", d.Normal(torch.zeros(2), 2.0)),
        ("b", d.Beta(2.0, 3.0)),
        ("c", d.Cauchy(1.0, 1.0)),  # no mean
        ("d", d.Dirichlet(torch.ones(3))),  # multivariate: no median
        ("e", d.LogNormal(0.0, 1.0).expand([2]).to_event(1)),
        ("f", d.Gamma(2.0, 1.0).mask(torch.tensor([True, False]))),
    ]


@pytest.mark.parametrize("name, kwargs", STRATEGIES, ids=[f"{n}{sorted(k)}" for n, k in STRATEGIES])
def test_strategies_give_pyros_values(name: str, kwargs: dict[str, Any]) -> None:
    def program(backend: Backend) -> Any:
        strategy = getattr(autoguide(backend), name)
        if kwargs:
            strategy = strategy(**kwargs)
        return [strategy({"name": site, "fn": fn}) for site, fn in _sites(backend)]

    ours, theirs = run_both(program)
    for got, expected in zip(ours, theirs):
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, equal_nan=True)
        assert getattr(got, "_pyro_custom_init", None) is getattr(expected, "_pyro_custom_init", None)


def test_called_without_a_site_each_strategy_returns_itself_bound() -> None:
    assert init_to_feasible() is init_to_feasible and init_to_sample() is init_to_sample
    bound = init_to_median(num_samples=3)
    assert bound({"name": "x", "fn": dist.Normal(5.0, 1e-6)}).item() == pytest.approx(5.0)
    assert init_to_value(values={"x": torch.tensor(9.0)})({"name": "x", "fn": dist.Normal(0.0, 1.0)}) == 9.0


def test_mean_and_median_fall_back() -> None:
    cauchy = {"name": "c", "fn": dist.Cauchy(3.0, 1e-3)}
    assert init_to_mean(cauchy).item() == pytest.approx(3.0, abs=0.1)  # median of draws
    assert init_to_mean(cauchy, fallback=init_to_feasible).item() == 0.0  # zero, unconstrained
    assert init_to_median({"name": "d", "fn": dist.Dirichlet(torch.ones(4))}).tolist() == [0.25] * 4


@pytest.mark.parametrize("name", ["init_to_mean", "init_to_median", "init_to_value"])
def test_no_fallback_raises_as_in_pyro(name: str) -> None:
    def program(backend: Backend) -> None:
        strategy = getattr(autoguide(backend), name)(fallback=None)
        site = "c" if name != "init_to_median" else "u"
        if name == "init_to_median":  # an invalid distribution: its median fails validation
            fn = backend.dist.Uniform(0.0, torch.tensor([1.0, -1.0]), validate_args=False)
        else:
            fn = backend.dist.Cauchy(0.0, 1.0)
        strategy({"name": site, "fn": fn})

    ours, _ = assert_same_error(program)
    assert isinstance(ours, ValueError) and "No init strategy specified for site" in str(ours)


def test_init_to_generated_asks_for_a_new_strategy_each_run() -> None:
    generated: list[int] = []

    def generate() -> Any:
        generated.append(len(generated))
        return init_to_value(values={"x": torch.tensor(float(len(generated)))})

    def model() -> torch.Tensor:
        x: torch.Tensor = ember.sample("x", dist.Normal(0.0, 1.0))
        ember.sample("y", dist.Normal(0.0, 1.0))
        return x

    init = init_to_generated(generate=generate)
    seeded = InitMessenger(init)(model)
    assert [seeded().item(), seeded().item()] == [1.0, 2.0] and generated == [0, 1]


def test_init_messenger_sets_latent_values_only() -> None:
    def model() -> None:
        with ember.plate("N", 4, subsample_size=2):
            ember.sample("x", dist.Normal(3.0, 1.0))
            ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.zeros(2))

    tr = poutine.trace(InitMessenger(init_to_mean)(model)).get_trace()
    assert tr.nodes["x"]["value"].tolist() == [3.0, 3.0]
    assert tr.nodes["y"]["value"].tolist() == [0.0, 0.0]
    assert tr.nodes["N"]["value"].shape == (2,)  # the plate drew its indices as usual


def test_init_messenger_runs_the_strategy_without_gradients() -> None:
    loc = torch.tensor(1.0, requires_grad=True)
    with InitMessenger(init_to_mean):
        value = ember.sample("x", dist.Normal(loc, 1.0))
    assert not value.requires_grad


def test_init_messenger_answers_get_init_messengers() -> None:
    get_init_messengers = effectful(lambda: None, type="get_init_messengers")
    outer, inner = InitMessenger(init_to_mean), InitMessenger(init_to_sample)
    with outer, inner:
        found = get_init_messengers()
    assert found == [inner, outer]


def test_spherical_and_discrete_sites_get_pyro_advice() -> None:
    def program(backend: Backend) -> None:
        with autoguide(backend).initialization.InitMessenger(autoguide(backend).init_to_feasible):
            backend.pyro.sample("k", backend.dist.Categorical(torch.ones(3)))

    ours, _ = assert_same_error(program)
    assert "Continuous inference cannot handle discrete sample site 'k'" in str(ours)
    assert "guide = AutoNormal(poutine.block(model, hide=['k']))." in str(ours)

"""Tests for ember.infer.autoguide.structured, against pyro-ppl and a conjugate model."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import Trace_ELBO
from ember.infer.autoguide import AutoStructured
from tests.infer.autoguide._models import elbo_loss, fit

pyro: Any = importlib.import_module("pyro")
pyro_dist: Any = importlib.import_module("pyro.distributions")
pyro_infer: Any = importlib.import_module("pyro.infer")
pyro_autoguide: Any = importlib.import_module("pyro.infer.autoguide")

DATA = torch.tensor([0.5, 1.0, 2.0])


def chain(lib: Any, d: Any) -> Any:
    """``a ~ N(0, 1)``, ``b ~ N(a, 1)``, ``c ~ LogNormal(0, 1)``, ``data ~ N(b + c, 1)``."""

    def model() -> None:
        a = lib.sample("a", d.Normal(0.0, 1.0))
        b = lib.sample("b", d.Normal(a, 1.0))
        c = lib.sample("c", d.LogNormal(torch.zeros(2), 1.0).to_event(1))
        with lib.plate("data", 3):
            lib.sample("obs", d.Normal(b + c.sum(), 1.0), obs=DATA)

    return model


def _copy_store_from_pyro() -> None:
    store = ember.get_param_store()
    for name, value in pyro.get_param_store().items():
        if "$$$" in name:  # an nn.Module's parameter: the store holds the module's own tensor
            with torch.no_grad():
                store[name].copy_(value)
        else:
            store[name] = value.detach().clone()


@pytest.mark.parametrize(
    "conditionals",
    ["mvn", "normal", {"a": "normal", "b": "delta", "c": "mvn"}],
)
def test_dependencies_params_and_loss_match_pyro(conditionals: Any) -> None:
    ours = AutoStructured(chain(ember, dist), conditionals=conditionals)
    theirs = pyro_autoguide.AutoStructured(chain(pyro, pyro_dist), conditionals=conditionals)
    ours(), theirs()
    assert ours.dependencies == theirs.dependencies == {"b": {"a": "linear"}, "c": {"b": "linear"}}
    assert list(ember.get_param_store()) == list(pyro.get_param_store())
    store = pyro.get_param_store()
    with torch.no_grad():
        for name, value in list(store.items()):  # move off the initial values
            if "$$$" in name:
                value.add_(0.1 * torch.randn_like(value))
            else:
                store[name] = value + 0.1 * torch.randn_like(value).abs()
    _copy_store_from_pyro()
    for seed in range(3):
        torch.manual_seed(seed)
        expected = pyro_infer.Trace_ELBO().loss(chain(pyro, pyro_dist), theirs)
        torch.manual_seed(seed)
        assert Trace_ELBO().loss(chain(ember, dist), ours) == pytest.approx(expected, rel=1e-5)


def test_explicit_dependencies_and_callable_conditionals() -> None:
    model = chain(ember, dist)
    offset = torch.nn.Parameter(torch.zeros(2))
    guide = AutoStructured(
        model,
        conditionals={"a": "normal", "b": "normal", "c": lambda: offset},
        dependencies={"b": {"a": "linear"}, "c": {"a": lambda aux: aux.expand(aux.shape[:-1] + (2,))}},
    )
    values = guide()
    assert values["c"].shape == (2,)
    assert [name for name, _ in guide._sorted_sites] == ["a", "b", "c"]
    assert set(guide.median()) == {"a", "b", "c"}


def test_fits_a_conjugate_linear_gaussian_chain() -> None:
    """``a ~ N(0, 1)``, ``b ~ N(a, 1)``, ``y_i ~ N(b, 1)``: normal conditionals plus the linear
    dependency of ``b`` on ``a`` represent the Gaussian posterior exactly, so the negative ELBO
    reaches ``-log p(y)`` (computed in closed form) up to the optimisation and Monte Carlo error
    (four standard errors of a 2,000-particle estimate plus 0.02 nats)."""
    y = torch.tensor([1.5, 2.5, 2.0, 3.0])

    def model() -> None:
        a = ember.sample("a", dist.Normal(0.0, 1.0))
        b = ember.sample("b", dist.Normal(a, 1.0))
        with ember.plate("data", 4):
            ember.sample("y", dist.Normal(b, 1.0), obs=y)

    guide = AutoStructured(model, conditionals="normal")
    guide()
    assert guide.dependencies == {"b": {"a": "linear"}}

    def loss() -> torch.Tensor:
        with ember.plate("particles", 32, dim=-2):
            return elbo_loss(model, guide) / 32

    fit(guide, loss, steps=80)
    # Marginally y ~ N(0, I + 2 * ones ones^T).
    covariance = torch.eye(4) + 2.0 * torch.ones(4, 4)
    evidence: Any = torch.distributions.MultivariateNormal(torch.zeros(4), covariance)
    log_evidence = evidence.log_prob(y)
    particles = 2000
    with torch.no_grad(), ember.plate("particles", particles, dim=-2):
        guide_trace = poutine.trace(guide).get_trace()
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace()
    gaps = _per_particle(guide_trace) - _per_particle(model_trace) + log_evidence  # KL samples
    standard_error = (gaps.std() / particles**0.5).item()
    assert abs(gaps.mean().item()) < 4 * standard_error + 0.02, (gaps.mean(), standard_error)


def _per_particle(trace: Any) -> torch.Tensor:
    total = torch.zeros(())
    for site in trace.nodes.values():
        if site["type"] == "sample":
            fn: Any = site["fn"]
            log_prob = fn.log_prob(site["value"])
            total = total + log_prob.reshape(log_prob.shape[:1] + (-1,)).sum(-1) if log_prob.dim() else total + log_prob
    return total


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"Expected init_scale > 0. but got -1.0"):
        AutoStructured(chain(ember, dist), init_scale=-1.0)
    guide = AutoStructured(chain(ember, dist), conditionals={"a": "cauchy", "b": "normal", "c": "normal"})
    with pytest.raises(ValueError, match="AutoStructured: unsupported conditional type: cauchy at site 'a'"):
        guide()
    assert list(ember.get_param_store()) == [] and guide.prototype_trace is None
    with pytest.raises(ValueError, match="Expected either the string 'linear' or a callable, but got quadratic"):
        AutoStructured(chain(ember, dist), dependencies="quadratic")()

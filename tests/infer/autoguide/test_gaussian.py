"""Tests for ember.infer.autoguide.gaussian (the dense backend), against pyro-ppl and a conjugate model."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import Trace_ELBO
from ember.infer.autoguide import AutoGaussian
from ember.infer.autoguide.gaussian import AutoGaussianDense
from tests.infer.autoguide._models import elbo_loss, fit

pyro: Any = importlib.import_module("pyro")
pyro_dist: Any = importlib.import_module("pyro.distributions")
pyro_infer: Any = importlib.import_module("pyro.infer")
pyro_autoguide: Any = importlib.import_module("pyro.infer.autoguide")

DATA = torch.tensor([0.5, 1.0, 2.0])


def plated(lib: Any, d: Any) -> Any:
    """A global ``a``, a positive ``b``, a local ``c`` in a plate and plated observations."""

    def model() -> None:
        a = lib.sample("a", d.Normal(0.0, 1.0))
        b = lib.sample("b", d.LogNormal(a, 1.0))
        with lib.plate("p", 3):
            c = lib.sample("c", d.Normal(a, 1.0))
            lib.sample("x", d.Normal(b + c, 1.0), obs=DATA)
        lib.sample("unused", d.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    return model


def test_params_structure_and_loss_match_pyro() -> None:
    ours = AutoGaussian(plated(ember, dist))
    theirs = pyro_autoguide.AutoGaussian(plated(pyro, pyro_dist))
    assert isinstance(ours, AutoGaussianDense)
    ours(), theirs()
    ember_store, pyro_store = ember.get_param_store(), pyro.get_param_store()
    assert list(ember_store) == list(pyro_store)
    assert [tuple(ember_store[n].shape) for n in ember_store] == [tuple(pyro_store[n].shape) for n in pyro_store]
    assert ours.dependencies == {k: v for k, v in theirs.dependencies.items() if k != "unused"}
    for name in ours._dense_scatter:
        assert all(torch.equal(a, b) for a, b in zip(ours._dense_scatter[name], theirs._dense_scatter[name]))
    with torch.no_grad():
        for name, value in list(pyro_store.items()):
            pyro_store[name] = value + 0.1 * torch.randn_like(value).abs()  # positive: keeps scales valid
            ember_store[name] = pyro_store[name].detach().clone()
    for seed in range(3):
        torch.manual_seed(seed)
        expected = pyro_infer.Trace_ELBO().loss(plated(pyro, pyro_dist), theirs)
        torch.manual_seed(seed)
        assert Trace_ELBO().loss(plated(ember, dist), ours) == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        for name, value in theirs.median().items():
            assert torch.allclose(ours.median()[name], value, atol=1e-5)


def test_fits_a_conjugate_linear_gaussian_chain() -> None:
    """``a ~ N(0, 1)``, ``b ~ N(a, 1)``, ``y_i ~ N(b, 1)``: the Gaussian family contains the
    posterior, so the per-particle ``log q - log p + log p(y)`` (the KL samples) averages to
    zero within four standard errors of a 2,000-particle estimate plus 0.02 nats."""
    y = torch.tensor([1.5, 2.5, 2.0, 3.0])

    def model() -> None:
        a = ember.sample("a", dist.Normal(0.0, 1.0))
        b = ember.sample("b", dist.Normal(a, 1.0))
        with ember.plate("data", 4):
            ember.sample("y", dist.Normal(b, 1.0), obs=y)

    guide = AutoGaussian(model)
    guide()

    def loss() -> torch.Tensor:
        with ember.plate("particles", 32, dim=-2):
            return elbo_loss(model, guide) / 32

    fit(guide, loss, steps=80)
    evidence: Any = torch.distributions.MultivariateNormal(torch.zeros(4), torch.eye(4) + 2.0 * torch.ones(4, 4))
    log_evidence = evidence.log_prob(y)
    particles = 2000
    with torch.no_grad(), ember.plate("particles", particles, dim=-2):
        guide_trace = poutine.trace(guide).get_trace()
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace()
    gaps = _per_particle(guide_trace) - _per_particle(model_trace) + log_evidence
    standard_error = (gaps.std() / particles**0.5).item()
    assert abs(gaps.mean().item()) < 4 * standard_error + 0.02, (gaps.mean(), standard_error)
    # The posterior mean of b is 2 * sum(y) / 9 (precision 4 + 1/2 against mean-field evidence).
    assert guide.median()["b"].item() == pytest.approx(2 * y.sum().item() / 9, abs=0.1)


def _per_particle(trace: Any) -> torch.Tensor:
    total = torch.zeros(())
    for site in trace.nodes.values():
        if site["type"] == "sample":
            fn: Any = site["fn"]
            log_prob = fn.log_prob(site["value"])
            total = total + (log_prob.reshape(log_prob.shape[:1] + (-1,)).sum(-1) if log_prob.dim() else log_prob)
    return total


def test_bad_arguments_and_shapes() -> None:
    with pytest.raises(NotImplementedError, match='AutoGaussian\\(..., backend="funsor"\\) is not available in Ember'):
        AutoGaussian(plated(ember, dist), backend="funsor")
    with pytest.raises(ValueError, match=r"Expected init_scale > 0. but got 0.0"):
        AutoGaussian(plated(ember, dist), init_scale=0.0)

    def unplated() -> None:
        ember.sample("z", dist.Normal(torch.zeros(3), 1.0))

    guide = AutoGaussian(unplated)
    with pytest.raises(ValueError, match="Shape mismatch at site 'z'. Are you missing a pyro.plate\\(\\) or .to_event\\(\\)?"):
        guide()
    assert list(ember.get_param_store()) == [] and guide.prototype_trace is None

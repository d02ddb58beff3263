"""GumbelSoftmaxReparam: Pyro's trace on the same seed, the relaxed marginal unchanged, bad input."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import GumbelSoftmaxReparam
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both

LOGITS = torch.tensor([0.5, -1.0, 0.2])


def test_trace_equals_pyros_on_the_same_seed() -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("p", 2):
                b.pyro.sample("x", b.dist.RelaxedOneHotCategorical(torch.tensor(0.7), logits=LOGITS))

        return b.poutine.trace(b.poutine.reparam(model, {"x": reparams.GumbelSoftmaxReparam()})).get_trace()

    ours, theirs = run_both(program, seed=4)
    assert list(ours.nodes) == ["_INPUT", "p", "x_uniform", "x", "_RETURN"]
    assert_traces_match(ours, theirs)


def test_the_relaxed_marginal_is_unchanged() -> None:
    # Compare moments of the reparameterized draws with torch's own sampler.
    n, temperature = 20000, torch.tensor(0.7)
    fn = dist.RelaxedOneHotCategorical(temperature, logits=LOGITS)

    def model() -> None:
        with ember.plate("draws", n):
            ember.sample("x", fn)

    x = poutine.trace(poutine.reparam(model, {"x": GumbelSoftmaxReparam()})).get_trace().nodes["x"]["value"]
    reference = fn.sample((n,))
    assert x.shape == reference.shape == (n, 3)
    se = (x.var(0) / n + reference.var(0) / n).sqrt()
    assert bool(((x.mean(0) - reference.mean(0)).abs() < 4 * se).all())
    assert torch.allclose(x.var(0), reference.var(0), rtol=0.05)


def test_an_initial_value_is_mapped_back_to_its_noise() -> None:
    fn = dist.RelaxedOneHotCategorical(torch.tensor(0.5), logits=LOGITS)
    value = torch.tensor([0.2, 0.3, 0.5])
    with poutine.trace() as tracer:
        result = GumbelSoftmaxReparam().apply({"name": "x", "fn": fn, "value": value, "is_observed": False})
    assert result["value"] is value and result["is_observed"]
    noise = tracer.trace.nodes["x_uniform"]["value"]
    assert torch.allclose(((LOGITS - noise.log().neg().log()) / 0.5).softmax(-1), value)


def test_bad_sites_are_refused_naming_them() -> None:
    def normal_model() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0))

    def observed_model() -> None:
        ember.sample("x", dist.RelaxedOneHotCategorical(torch.tensor(0.5), logits=LOGITS), obs=torch.tensor([0.2, 0.3, 0.5]))

    with pytest.raises(AssertionError, match="GumbelSoftmaxReparam at site 'x' expects a RelaxedOneHotCategorical distribution, got Normal"):
        poutine.trace(poutine.reparam(normal_model, {"x": GumbelSoftmaxReparam()})).get_trace()
    with pytest.raises(NotImplementedError, match="SoftmaxReparam does not support observe statements \\(at sample site 'x'\\)"):
        poutine.trace(poutine.reparam(observed_model, {"x": GumbelSoftmaxReparam()})).get_trace()

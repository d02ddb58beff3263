"""StudentTReparam: Pyro's trace on the same seed, the marginal unchanged, the wrong distribution refused."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import StudentTReparam
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


@pytest.mark.parametrize("observed", [False, True])
def test_trace_and_log_density_equal_pyros_on_the_same_seed(observed: bool) -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("p", 3):
                obs = torch.tensor([0.5, -2.0, 4.0]) if observed else None
                b.pyro.sample("x", b.dist.StudentT(torch.tensor([2.0, 3.0, 9.0]), 1.0, 2.0), obs=obs)
            b.pyro.sample("y", b.dist.StudentT(5.0, torch.zeros(2), 1.0).to_event(1))

        config = {"x": reparams.StudentTReparam(), "y": reparams.StudentTReparam()}
        return b.poutine.trace(b.poutine.reparam(model, config)).get_trace()

    ours, theirs = run_both(program, seed=3)
    assert list(ours.nodes) == ["_INPUT", "p", "x_gamma", "x", "y_gamma", "y", "_RETURN"]
    assert_traces_match(ours, theirs)


def test_the_marginal_of_the_site_is_unchanged() -> None:
    df, loc, scale, n = 5.0, 1.0, 2.0, 40000

    def model() -> None:
        with ember.plate("draws", n):
            ember.sample("x", dist.StudentT(df, loc, scale))

    x = poutine.trace(poutine.reparam(model, {"x": StudentTReparam()})).get_trace().nodes["x"]["value"]
    variance = scale**2 * df / (df - 2)
    assert x.mean().item() == pytest.approx(loc, abs=4 * (variance / n) ** 0.5)
    # The variance's standard error, from the fourth moment of a t with 5 degrees of freedom.
    kurtosis = 3 + 6 / (df - 4)
    assert x.var().item() == pytest.approx(variance, abs=4 * variance * ((kurtosis - 1) / n) ** 0.5)


def test_a_site_of_another_distribution_is_refused_naming_it() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(AssertionError, match="StudentTReparam at site 'x' expects a StudentT distribution, got Normal"):
        poutine.trace(poutine.reparam(model, {"x": StudentTReparam()})).get_trace()
    assert ember.poutine.runtime.get_stack() == ()

"""LinearHMMReparam: Pyro's traces on the same seed, the marginal of the series unchanged, and
sites of other distributions refused."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import LinearHMMReparam, StudentTReparam
from tests.parity._backends import EMBER, Backend, EmberState, assert_traces_match, run_both


def _hmm(b: Backend, duration: int, transformed: bool) -> Any:
    hidden, obs = 2, 3
    init = b.dist.Stable(torch.full((hidden,), 1.5), 0.0).to_event(1)
    trans = b.dist.StudentT(4.0, torch.zeros(duration, hidden), 0.5).to_event(1)
    noise = b.dist.Stable(torch.full((duration, obs), 1.7), 0.3, 0.2).to_event(1)
    if transformed:
        noise = b.dist.TransformedDistribution(noise, [torch.distributions.ExpTransform()])
    trans_matrix = 0.5 * torch.eye(hidden) + 0.1
    obs_matrix = torch.arange(1.0, 1.0 + hidden * obs).reshape(hidden, obs) / 6
    return b.dist.LinearHMM(init, trans_matrix, trans, obs_matrix, noise, duration=duration)


@pytest.mark.parametrize("transformed", [False, True])
def test_trace_and_log_density_equal_pyros_on_the_same_seed(transformed: bool) -> None:
    duration = 4

    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        rep = reparams.LinearHMMReparam(
            init=reparams.SymmetricStableReparam(), trans=reparams.StudentTReparam(), obs=reparams.StableReparam()
        )
        data = torch.rand(duration, 3) + 0.5

        def model() -> None:
            b.pyro.sample("x", _hmm(b, duration, transformed), obs=data)

        return b.poutine.trace(b.poutine.reparam(model, {"x": rep})).get_trace()

    ours, theirs = run_both(program, seed=7)
    assert list(ours.nodes)[1:-1] == [
        "x_init_uniform", "x_init_exponential", "x_trans_gamma",
        "x_obs_z_uniform", "x_obs_z_exponential", "x_obs_t_uniform", "x_obs_t_exponential", "x",
    ]
    expected = "TransformedDistribution" if transformed else "GaussianHMM"
    assert type(ours.nodes["x"]["fn"]).__name__ == expected
    assert_traces_match(ours, theirs)


def test_independent_hmm_components_are_reparameterized_like_pyros() -> None:
    duration = 5

    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        init = b.dist.StudentT(3.0, torch.zeros(2, 1), 1.0).to_event(1)
        trans = b.dist.Normal(torch.zeros(2, 1, 1), 0.5).to_event(1)
        noise = b.dist.StudentT(5.0, torch.zeros(2, 1, 1), 0.3).to_event(1)
        base = b.dist.LinearHMM(init, torch.full((2, 1, 1, 1), 0.9), trans, torch.ones(2, 1, 1, 1), noise, duration=duration)
        data = torch.randn(duration, 2)

        def model() -> None:
            b.pyro.sample("x", b.dist.IndependentHMM(base), obs=data)

        rep = reparams.LinearHMMReparam(init=reparams.StudentTReparam(), obs=reparams.StudentTReparam())
        return b.poutine.trace(b.poutine.reparam(model, {"x": rep})).get_trace()

    ours, theirs = run_both(program, seed=3)
    assert type(ours.nodes["x"]["fn"]).__name__ == "IndependentHMM"
    assert ours.nodes["x"]["fn"].event_shape == (duration, 2)
    assert_traces_match(ours, theirs)


def test_the_marginal_of_the_series_is_unchanged() -> None:
    """Mean and variance of x_t for a scalar model with a Student-t start, against the exact
    moments; tolerances are 4.5 standard errors, the variance's from the sample fourth moment."""
    n, df, a, s_trans, s_obs, duration = 20000, 5.0, 0.8, 0.5, 0.3, 3
    hmm = dist.LinearHMM(
        dist.StudentT(df, torch.zeros(1), 1.0).to_event(1), torch.full((1, 1), a),
        dist.Normal(torch.zeros(1), s_trans).to_event(1), torch.ones(1, 1),
        dist.Normal(torch.zeros(1), s_obs).to_event(1), duration=duration,
    )

    def model() -> torch.Tensor:
        with ember.plate("draws", n):
            x: torch.Tensor = ember.sample("x", hmm)
        return x

    torch.manual_seed(0)
    x = poutine.reparam(model, {"x": LinearHMMReparam(init=StudentTReparam())})()[..., 0]
    assert x.shape == (n, duration)
    for t in range(duration):
        # The initial distribution is the state before the first step: x_t sees t + 1 steps.
        steps = t + 1
        variance = a ** (2 * steps) * df / (df - 2) + s_trans**2 * (1 - a ** (2 * steps)) / (1 - a**2) + s_obs**2
        column = x[:, t]
        assert abs(float(column.mean())) < 4.5 * (variance / n) ** 0.5
        squares = (column - column.mean()) ** 2
        assert abs(float(squares.mean()) - variance) < 4.5 * float(squares.std()) / n**0.5


def test_bad_input_is_refused_naming_the_site() -> None:
    with pytest.raises(AssertionError, match="init must be a Reparam or None, got str"):
        LinearHMMReparam(init="studentt")  # type: ignore[arg-type]  # the error under test

    def normal_model() -> None:
        ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    hmm = dist.LinearHMM(
        dist.Normal(torch.zeros(1), 1.0).to_event(1), torch.eye(1), dist.Normal(torch.zeros(1), 1.0).to_event(1),
        torch.eye(1), dist.Normal(torch.zeros(1), 1.0).to_event(1),
    )

    def no_duration_model() -> None:
        ember.sample("z", hmm, obs=torch.zeros(3, 1))

    before = EmberState.capture()
    with pytest.raises(AssertionError, match="LinearHMMReparam at site 'y' expects a LinearHMM .*got Normal"):
        poutine.trace(poutine.reparam(normal_model, {"y": LinearHMMReparam()})).get_trace()
    with pytest.raises(ValueError, match=r"LinearHMMReparam requires duration to be specified .*\(site 'z'\)"):
        poutine.trace(poutine.reparam(no_duration_model, {"z": LinearHMMReparam()})).get_trace()
    assert EmberState.capture() == before

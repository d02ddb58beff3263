"""ConjugateReparam: Pyro's traces on the same seed, an exact marginal likelihood when the guide
is the exact likelihood, and priors without a conjugate update refused."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import ConjugateReparam
from tests.parity._backends import EMBER, Backend, EmberState, assert_traces_match, run_both

_DURATION = 4
_DATA = torch.tensor([[0.5], [-1.0], [2.0], [0.3]])


def _hmm(d: Any, obs_scale: float = 0.4) -> Any:
    return d.GaussianHMM(
        d.Normal(torch.zeros(1), 1.0).to_event(1), torch.full((1, 1), 0.7),
        d.Normal(torch.zeros(1), 0.6).to_event(1), torch.ones(1, 1),
        d.Normal(torch.zeros(1), obs_scale).to_event(1), duration=_DURATION,
    )


def _model(b: Backend, likelihood_scale: float) -> Any:
    def model(data: torch.Tensor) -> None:
        x = b.pyro.sample("x", _hmm(b.dist))
        b.pyro.sample("y", b.dist.Normal(x, likelihood_scale).to_event(2), obs=data)

    return model


@pytest.mark.parametrize("callable_guide", [False, True])
def test_trace_and_log_density_equal_pyros_on_the_same_seed(callable_guide: bool) -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        # A deliberately inexact guide: the importance weight is then not constant.
        guide: Any = b.dist.Normal(_DATA, 0.8).to_event(2)
        if callable_guide:
            guide = lambda data: b.dist.Normal(data, 0.8).to_event(2)  # noqa: E731
        model = b.poutine.reparam(_model(b, 0.5), {"x": reparams.ConjugateReparam(guide)})
        return b.poutine.trace(model).get_trace(_DATA)

    ours, theirs = run_both(program, seed=2)
    assert list(ours.nodes) == ["_INPUT", "x", "y", "_RETURN"]  # the draw itself is not traced
    assert_traces_match(ours, theirs)


def test_an_exact_guide_gives_the_exact_marginal_likelihood_whatever_the_draw() -> None:
    """With q(x | y) the exact likelihood, log p(x) - log u(x) + log p(y | x) is log p(y): the
    marginal of y is the HMM with the likelihood's variance added to the observation noise."""
    scale = 0.5
    reparameterized = poutine.reparam(_model(EMBER, scale), {"x": ConjugateReparam(dist.Normal(_DATA, scale).to_event(2))})
    marginal = _hmm(dist, obs_scale=(0.4**2 + scale**2) ** 0.5).log_prob(_DATA)
    draws = []
    for seed in range(3):
        torch.manual_seed(seed)
        tr = poutine.trace(reparameterized).get_trace(_DATA)
        draws.append(tr.nodes["x"]["value"])
        assert torch.allclose(tr.log_prob_sum(), marginal, atol=1e-4)
    assert not torch.allclose(draws[0], draws[1])


def test_the_updated_draws_follow_the_posterior() -> None:
    """The draws of x come from the exact posterior p(x | y): their mean matches the
    GaussianHMM's filtering mean at the last step within 4.5 standard errors."""
    n, scale = 4000, 0.5
    guide = dist.Normal(_DATA, scale).to_event(2)

    def model() -> torch.Tensor:
        with ember.plate("draws", n, dim=-1):
            x: torch.Tensor = ember.sample("x", _hmm(dist).expand([n]))
        return x

    torch.manual_seed(0)
    x = poutine.reparam(model, {"x": ConjugateReparam(guide)})()
    # The filter of the HMM whose observation noise is the likelihood's: its final state
    # p(z_T | y) is the posterior of the last hidden state; x_T = z_T + obs noise.
    posterior: Any = dist.GaussianHMM(
        dist.Normal(torch.zeros(1), 1.0).to_event(1), torch.full((1, 1), 0.7),
        dist.Normal(torch.zeros(1), 0.6).to_event(1), torch.ones(1, 1),
        dist.Normal(torch.zeros(1), (0.4**2 + scale**2) ** 0.5).to_event(1), duration=_DURATION,
    ).filter(_DATA)
    z_mean, z_var = posterior.mean[0], posterior.covariance_matrix[0, 0]
    # x_T | z_T, y_T is normal with precision 1/0.4^2 + 1/scale^2.
    precision = 1 / 0.4**2 + 1 / scale**2
    gain = (1 / 0.4**2) / precision
    mean = gain * z_mean + (1 - gain) * _DATA[-1, 0]
    variance = gain**2 * z_var + 1 / precision
    last = x[:, -1, 0]
    assert abs(float(last.mean() - mean)) < 4.5 * float(variance) ** 0.5 / n**0.5
    assert abs(float(last.var()) - float(variance)) < 4.5 * float(variance) * (2 / n) ** 0.5


def test_a_prior_without_a_conjugate_update_is_refused_naming_the_site() -> None:
    def model() -> None:
        ember.sample("w", dist.Normal(0.0, 1.0))

    before = EmberState.capture()
    with pytest.raises(NotImplementedError, match="ConjugateReparam at site 'w': Normal has no conjugate_update"):
        poutine.trace(poutine.reparam(model, {"w": ConjugateReparam(dist.Normal(0.0, 1.0))})).get_trace()
    assert EmberState.capture() == before

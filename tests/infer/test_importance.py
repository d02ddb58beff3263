"""Importance sampling and vectorized importance weights: the log weights match pyro-ppl."""

from __future__ import annotations

import math
from typing import Any

import pyro.infer.importance
import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import Importance
from ember.infer.importance import LogWeightsMixin, vectorized_importance_weights
from tests.parity._backends import assert_same_value, run_both

DATA = torch.tensor([0.3, -0.5, 1.2, 0.8])


class _Ember:
    """The namespaces ``_model`` and ``_guide`` need, for Ember alone."""

    pyro = ember
    dist = dist


def _model(b: Any) -> Any:
    def model(data: torch.Tensor) -> Any:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 2.0))
        with b.pyro.plate("N", len(data)):
            b.pyro.sample("obs", b.dist.Normal(loc, 1.0), obs=data)
        return loc

    return model


def _guide(b: Any) -> Any:
    def guide(data: torch.Tensor) -> None:
        b.pyro.sample("loc", b.dist.Normal(b.pyro.param("m", torch.tensor(0.4)), 0.6))

    return guide


@pytest.mark.parametrize("with_guide", [False, True], ids=["prior", "guide"])
def test_log_weights_and_summaries_match_pyro(with_guide: bool) -> None:
    def program(b: Any) -> Any:
        guide = _guide(b) if with_guide else None
        posterior = b.infer.Importance(_model(b), guide, num_samples=20).run(DATA)
        return (
            torch.stack(posterior.log_weights),
            [tr.nodes["loc"]["value"] for tr in posterior.exec_traces],
            posterior.get_log_normalizer(),
            posterior.get_normalized_weights(),
            posterior.get_normalized_weights(log_scale=True),
            posterior.get_ESS(),
            posterior().nodes["loc"]["value"],
        )

    ours, theirs = run_both(program)
    assert ours[0].shape == (20,)
    assert_same_value(ours, theirs, "importance")


def test_log_weight_is_model_minus_guide_log_density() -> None:
    posterior = Importance(_model(_Ember), _guide(_Ember), num_samples=3).run(DATA)
    for tr, log_weight in zip(posterior.exec_traces, posterior.log_weights):
        loc = tr.nodes["loc"]["value"]
        expected = (
            dist.Normal(0.0, 2.0).log_prob(loc)
            + dist.Normal(loc, 1.0).log_prob(DATA).sum()
            - dist.Normal(0.4, 0.6).log_prob(loc)
        )
        torch.testing.assert_close(log_weight, expected)
        assert not log_weight.requires_grad


def test_default_num_samples_warns() -> None:
    with pytest.warns(UserWarning, match="num_samples not provided, defaulting to 10"):
        posterior = Importance(_model(_Ember))
    assert posterior.num_samples == 10
    assert len(posterior.run(DATA).exec_traces) == 10


def test_default_guide_is_the_prior_without_observations() -> None:
    posterior = Importance(_model(_Ember), num_samples=2)
    tr = ember.poutine.trace(posterior.guide).get_trace(DATA)
    assert tr.stochastic_nodes == ["loc", "N"]
    assert tr.observation_nodes == []


def test_empty_log_weights_warn() -> None:
    class Weights(LogWeightsMixin):
        log_weights: list[float] = []

    weights = Weights()
    with pytest.warns(UserWarning, match="The log_weights list is empty, can not compute normalizing constant estimate."):
        assert weights.get_log_normalizer() is None
    with pytest.warns(UserWarning, match="The log_weights list is empty. There is nothing to normalize."):
        assert weights.get_normalized_weights() is None
    with pytest.warns(UserWarning, match="The log_weights list is empty, effective sample size is zero."):
        assert weights.get_ESS() == 0


def test_summaries_of_a_tensor_of_log_weights() -> None:
    class Weights(LogWeightsMixin):
        log_weights = torch.tensor([0.0, math.log(3.0)])

    weights = Weights()
    torch.testing.assert_close(weights.get_normalized_weights(), torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(weights.get_log_normalizer(), torch.tensor(math.log(2.0)))
    torch.testing.assert_close(weights.get_ESS(), torch.tensor(1 / (0.25**2 + 0.75**2)))


@pytest.mark.parametrize("num_samples", [1, 6])
def test_vectorized_importance_weights_match_pyro(num_samples: int) -> None:
    def program(b: Any) -> Any:
        fn = ember.infer.importance.vectorized_importance_weights if b.pyro is ember else pyro.infer.importance.vectorized_importance_weights
        log_weights, model_trace, guide_trace = fn(
            _model(b), _guide(b), DATA, num_samples=num_samples, max_plate_nesting=1
        )
        return log_weights, model_trace.nodes["loc"]["value"], list(model_trace.nodes), list(guide_trace.nodes)

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs, "vectorized")
    if num_samples > 1:
        assert ours[0].shape == (num_samples,)


def test_vectorized_importance_weights_normalized_and_errors() -> None:
    log_weights, _, _ = vectorized_importance_weights(
        _model(_Ember), _guide(_Ember), DATA, num_samples=5, max_plate_nesting=1, normalized=True
    )
    assert isinstance(log_weights, torch.Tensor)
    torch.testing.assert_close(log_weights.exp().sum(), torch.tensor(1.0))
    with pytest.raises(ValueError, match="must provide max_plate_nesting"):
        vectorized_importance_weights(_model(_Ember), _guide(_Ember), DATA, num_samples=5)

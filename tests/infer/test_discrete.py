"""infer_discrete and TraceEnumSample_ELBO against the brute-force posterior."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import TraceEnumSample_ELBO, infer_discrete
from tests.infer._brute_force import chi2_quantile, exact_answers
from tests.infer._enum_models import EXACT_MODELS, GMM_DATA, HMM_DATA, gmm, history2


@pytest.mark.parametrize("name", sorted(EXACT_MODELS))
def test_temperature_zero_is_the_brute_force_argmax(name: str) -> None:
    model_fn, data, max_plate_nesting, _ = EXACT_MODELS[name]
    model = functools.partial(model_fn, ember, dist)
    expected = exact_answers(name).argmax
    decoder = infer_discrete(model, first_available_dim=-1 - max_plate_nesting, temperature=0)
    tr = poutine.trace(decoder).get_trace(data)
    for site, value in expected.items():
        assert torch.equal(tr.nodes[site]["value"].long().reshape(value.shape), value), site


def _chi_squared(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson's statistic, with cells of expected count under 5 lumped into one."""
    expected = probs * counts.sum()
    small = expected < 5
    observed = torch.cat([counts[~small], counts[small].sum().reshape(1)])
    expected = torch.cat([expected[~small], expected[small].sum().reshape(1)])
    keep = expected > 0
    statistic = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    return float(statistic), int(keep.sum()) - 1


@pytest.mark.parametrize("name,draws_dim", [("gmm", -2), ("history2", -1)])
def test_temperature_one_samples_pass_chi_squared(name: str, draws_dim: int) -> None:
    model_fn, data, max_plate_nesting, latents = EXACT_MODELS[name]
    model = functools.partial(model_fn, ember, dist)
    exact = exact_answers(name)
    num_draws = 3000

    def many(data: torch.Tensor) -> Any:
        # Each slice of an outer plate is an independent posterior draw.
        with ember.plate("draws", num_draws, dim=draws_dim):
            return model(data)

    ember.set_rng_seed(1)
    tr = poutine.trace(infer_discrete(many, first_available_dim=draws_dim - 1, temperature=1)).get_trace(data)
    counts = torch.zeros(len(exact.assignments))
    for i in range(num_draws):
        values = {site: tr.nodes[site]["value"].long().reshape(num_draws, -1)[i] for site in latents}
        counts[exact.index_of(values)] += 1
    statistic, df = _chi_squared(counts, exact.posterior)
    assert df >= 3
    assert statistic < chi2_quantile(df)


def test_decorator_form_and_return_value() -> None:
    model = functools.partial(history2, ember, dist)

    @infer_discrete(first_available_dim=-1, temperature=0)
    def decoder(data: torch.Tensor) -> Any:
        return model(data)

    states = decoder(HMM_DATA)
    expected = exact_answers("history2").argmax
    assert [int(s) for s in states] == [int(expected[f"x_{t}"]) for t in range(4)]


def test_trace_enum_sample_elbo_draws_valid_posterior_samples() -> None:
    model = functools.partial(gmm, ember, dist)
    exact = exact_answers("gmm")
    elbo = TraceEnumSample_ELBO(max_plate_nesting=1)
    support = exact.posterior > 0
    seen = set()
    for _ in range(20):
        loss = elbo.loss(model, lambda data: None, GMM_DATA)
        assert loss == pytest.approx(-exact.log_evidence, rel=1e-5)
        z = elbo.sample_saved()
        index = exact.index_of({"z": z})
        assert support[index]
        seen.add(index)
    assert len(seen) > 1  # it samples, not maximizes


def test_sample_saved_before_a_loss_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="needs a loss computed first"):
        TraceEnumSample_ELBO(max_plate_nesting=1).sample_saved()

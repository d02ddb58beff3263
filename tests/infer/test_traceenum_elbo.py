"""TraceEnum_ELBO against brute-force summation over every joint assignment of the latents."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO, config_enumerate
from ember.infer.autoguide import AutoNormal
from ember.optim import Adam
from tests.infer._brute_force import BruteForce, ExactAnswers, exact_answers
from tests.infer._enum_models import EXACT_MODELS, GMM_DATA, HMM_DATA, gmm, hmm

MODEL_NAMES = sorted(EXACT_MODELS)


def _bound(name: str) -> tuple[Any, torch.Tensor, int, ExactAnswers]:
    model_fn, data, max_plate_nesting, _ = EXACT_MODELS[name]
    exact = exact_answers(name)
    return functools.partial(model_fn, ember, dist), data, max_plate_nesting, exact


def _empty_guide(data: torch.Tensor) -> None:
    pass


def _leaves() -> dict[str, torch.Tensor]:
    return dict(ember.get_param_store().named_parameters())


def _grads(loss: torch.Tensor) -> dict[str, torch.Tensor]:
    leaves = _leaves()
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {name: torch.zeros_like(leaf) if g is None else g for (name, leaf), g in zip(leaves.items(), grads)}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_loss_and_gradients_equal_brute_force(name: str) -> None:
    model, data, max_plate_nesting, exact = _bound(name)
    expected_grads = exact.grads
    elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
    assert elbo.loss(model, _empty_guide, data) == pytest.approx(-exact.log_evidence, rel=1e-5)
    actual_grads = _grads(elbo.differentiable_loss(model, _empty_guide, data))
    for key, expected in expected_grads.items():
        assert torch.allclose(actual_grads[key], expected, atol=1e-5), key
    # loss_and_grads accumulates the same gradients into the leaves.
    loss = elbo.loss_and_grads(model, _empty_guide, data)
    assert loss == pytest.approx(-exact.log_evidence, rel=1e-5)
    for key, leaf in _leaves().items():
        assert leaf.grad is not None
        assert torch.allclose(leaf.grad, expected_grads[key], atol=1e-5), key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_compute_marginals_equal_brute_force(name: str) -> None:
    model, data, max_plate_nesting, exact = _bound(name)
    marginals = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting).compute_marginals(model, _empty_guide, data)
    assert sorted(marginals) == sorted(exact.names)
    for site in exact.names:
        probs = marginals[site].probs if not isinstance(marginals[site], dist.Bernoulli) else None
        assert probs is not None
        assert torch.allclose(probs, exact.marginals[site], atol=1e-5), site


@pytest.mark.parametrize("name", ["hmm", "history2", "nested_plates"])
def test_vectorized_particles_and_jit_give_the_exact_loss(name: str) -> None:
    model, data, max_plate_nesting, exact = _bound(name)
    expected = -exact.log_evidence
    vectorized = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting, num_particles=3, vectorize_particles=True)
    assert vectorized.loss(model, _empty_guide, data) == pytest.approx(expected, rel=1e-5)
    jit = JitTraceEnum_ELBO(max_plate_nesting=max_plate_nesting, ignore_jit_warnings=True)
    for _ in range(2):  # compiles, then runs the graph
        assert jit.loss(model, _empty_guide, data) == pytest.approx(expected, rel=1e-5)


def test_max_plate_nesting_is_guessed() -> None:
    model, data, _, exact = _bound("nested_plates")
    elbo = TraceEnum_ELBO()
    assert elbo.loss(model, _empty_guide, data) == pytest.approx(-exact.log_evidence, rel=1e-5)
    assert elbo.max_plate_nesting == 2


def test_guide_side_sequential_and_parallel_enumeration_are_exact() -> None:
    # With "a" enumerated in the guide, the ELBO is sum_a q(a) [log p(data, a) - log q(a)] exactly.
    model, data, max_plate_nesting, exact = _bound("nested_plates")
    q = torch.tensor([0.25, 0.75])
    log_p_a = torch.stack([
        torch.logsumexp(exact.log_joint[[i for i, a in enumerate(exact.assignments) if int(a["a"]) == k]], 0)
        for k in range(2)
    ]).detach()
    expected = -(q * (log_p_a - q.log())).sum().item()
    for mode in ("sequential", "parallel"):
        def guide(data: torch.Tensor, mode: str = mode) -> None:
            probs = ember.param("q_a", q, constraint=dist.constraints.simplex)
            ember.sample("a", dist.Categorical(probs), infer={"enumerate": mode})

        ember.clear_param_store()
        elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
        assert elbo.loss(model, guide, data) == pytest.approx(expected, rel=1e-5), mode


def test_sample_posterior_draws_from_the_joint_posterior() -> None:
    model, data, max_plate_nesting, exact = _bound("gmm")
    elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
    counts = torch.zeros(len(exact.assignments))
    draws = 100
    for _ in range(draws):
        z = elbo.sample_posterior(model, _empty_guide, data)
        counts[exact.index_of({"z": z})] += 1
    # The most probable assignment is drawn about as often as the posterior says.
    top = int(exact.posterior.argmax())
    p = float(exact.posterior[top])
    assert abs(counts[top] / draws - p) < 4 * (p * (1 - p) / draws) ** 0.5


def test_predictive_of_an_enumerated_model_with_autonormal() -> None:
    def model(data: torch.Tensor | None = None) -> None:
        loc = ember.sample("loc", dist.Normal(0.0, 3.0))
        with ember.plate("data", 4):
            z = ember.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
            ember.sample("x", dist.Normal(loc * z, 1.0), obs=data)

    guide = AutoNormal(ember.poutine.block(model, hide=["z"]))
    svi = SVI(model, guide, Adam({"lr": 0.05}), TraceEnum_ELBO(max_plate_nesting=1))
    svi.step(torch.tensor([2.9, 3.1, 0.1, 3.0]))
    samples = ember.infer.Predictive(model, guide=guide, num_samples=5, return_sites=["x", "z"])()
    assert samples["x"].shape == (5, 4) and samples["z"].shape == (5, 4)


def test_strict_enumeration_warning() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    with pytest.warns(UserWarning, match="TraceEnum_ELBO found no sample sites configured for enumeration"):
        TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TraceEnum_ELBO(max_plate_nesting=0, strict_enumeration_warning=False).loss(model, lambda: None)


def test_hmm_training_lowers_the_loss_and_reuses_the_plan() -> None:
    model = functools.partial(hmm, ember, dist)
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    svi = SVI(model, _empty_guide, Adam({"lr": 0.05}), elbo)
    losses = [svi.step(HMM_DATA) for _ in range(20)]
    assert losses[-1] < losses[0]
    assert len(elbo._sum_product._plans) == 1  # one structure, one cached plan
    # A different length is a different structure: a second plan, still exact.
    exact = BruteForce(model, {f"x_{t}": ((), 3) for t in range(3)}, HMM_DATA[:3])
    assert elbo.loss(model, _empty_guide, HMM_DATA[:3]) == pytest.approx(-exact.log_evidence.item(), rel=1e-5)
    assert len(elbo._sum_product._plans) == 2


def test_gmm_scale_applies_outside_the_sum() -> None:
    model = functools.partial(gmm, ember, dist)
    exact = BruteForce(model, {"z": ((3,), 2)}, GMM_DATA)
    scaled = ember.poutine.scale(model, scale=2.5)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(scaled, _empty_guide, GMM_DATA)
    assert loss == pytest.approx(-2.5 * exact.log_evidence.item(), rel=1e-5)

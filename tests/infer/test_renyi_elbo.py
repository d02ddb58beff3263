"""RenyiELBO: the alpha bound by hand, the importance-weighted limit, and its gradient."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions.score_parts import ScoreParts
from ember.infer import RenyiELBO

DATA = torch.tensor([0.4, -0.3, 1.1])


def model(data: torch.Tensor) -> None:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    with ember.plate("N", len(data)):
        ember.sample("x", dist.Normal(z, 1.0), obs=data)


def guide(data: torch.Tensor) -> None:
    loc = ember.param("loc", torch.tensor(0.1))
    scale = ember.param("scale", torch.tensor(0.9), constraint=dist.constraints.positive)
    ember.sample("z", dist.Normal(loc, scale))


def _log_weights(num_particles: int, seed: int, fn_model: Any = model, fn_guide: Any = guide) -> torch.Tensor:
    """``log p(x, z_k) - log q(z_k)`` per particle, drawn as RenyiELBO draws them."""
    ember.set_rng_seed(seed)
    weights = []
    for _ in range(num_particles):
        guide_tr = poutine.trace(fn_guide).get_trace(DATA)
        model_tr = poutine.trace(poutine.replay(fn_model, trace=guide_tr)).get_trace(DATA)
        weights.append(torch.as_tensor(model_tr.log_prob_sum() - guide_tr.log_prob_sum()))
    return torch.stack(weights)


def _bound(log_weights: torch.Tensor, alpha: float) -> torch.Tensor:
    k = log_weights.shape[0]
    return (torch.logsumexp((1 - alpha) * log_weights, 0) - math.log(k)) / (1 - alpha)


def test_alpha_one_is_rejected_with_pyros_text() -> None:
    with pytest.raises(ValueError, match=r"^The order alpha should not be equal to 1\. Please use Trace_ELBO classfor the case alpha = 1\.$"):
        RenyiELBO(alpha=1)


@pytest.mark.parametrize("alpha", [0.0, 0.5, -1.0, 2.0])
def test_loss_is_the_renyi_bound_of_the_particles(alpha: float) -> None:
    guide(DATA)  # create the params before drawing
    expected = -_bound(_log_weights(4, seed=3), alpha).item()
    ember.set_rng_seed(3)
    assert RenyiELBO(alpha=alpha, num_particles=4).loss(model, guide, DATA) == pytest.approx(expected, rel=1e-5)


def test_importance_weighted_bound_of_the_exact_posterior_is_the_log_evidence() -> None:
    n = len(DATA)
    ember.param("loc", DATA.sum() / (n + 1))
    ember.param("scale", torch.tensor((n + 1) ** -0.5), constraint=dist.constraints.positive)
    log_evidence = dist.MultivariateNormal(torch.zeros(n), torch.eye(n) + 1).log_prob(DATA).item()
    assert RenyiELBO(num_particles=5).loss(model, guide, DATA) == pytest.approx(-log_evidence, abs=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_gradient_is_the_gradient_of_the_bound(alpha: float) -> None:
    guide(DATA)
    by_hand = -_bound(_log_weights(3, seed=5), alpha)
    torch.autograd.backward(by_hand)
    expected = {name: leaf.grad.clone() for name, leaf in ember.get_param_store().named_parameters() if leaf.grad is not None}
    for leaf in dict(ember.get_param_store().named_parameters()).values():
        leaf.grad = None
    ember.set_rng_seed(5)
    loss = RenyiELBO(alpha=alpha, num_particles=3).loss_and_grads(model, guide, DATA)
    assert loss == pytest.approx(by_hand.item(), rel=1e-5)
    assert sorted(expected) == ["loc", "scale"]
    for name, leaf in ember.get_param_store().named_parameters():
        assert leaf.grad is not None and torch.allclose(leaf.grad, expected[name], rtol=1e-4, atol=1e-6)


def test_differentiable_loss_matches_loss_and_grads() -> None:
    ember.set_rng_seed(8)
    loss = RenyiELBO(alpha=0.3, num_particles=3).differentiable_loss(model, guide, DATA)
    torch.autograd.backward(loss)
    grads = {name: leaf.grad.clone() for name, leaf in ember.get_param_store().named_parameters() if leaf.grad is not None}
    for leaf in dict(ember.get_param_store().named_parameters()).values():
        leaf.grad = None
    ember.set_rng_seed(8)
    value = RenyiELBO(alpha=0.3, num_particles=3).loss_and_grads(model, guide, DATA)
    assert loss.item() == pytest.approx(value, rel=1e-6)
    for name, leaf in ember.get_param_store().named_parameters():
        assert leaf.grad is not None and torch.allclose(leaf.grad, grads[name])


def test_plates_shared_by_every_site_stay_independent() -> None:
    def local_model(data: torch.Tensor) -> None:
        with ember.plate("N", len(data)):
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            ember.sample("x", dist.Normal(z, 1.0), obs=data)

    def local_guide(data: torch.Tensor) -> None:
        with ember.plate("N", len(data)):
            ember.sample("z", dist.Normal(ember.param("loc", torch.zeros(len(data))), 1.0))

    local_guide(DATA)
    ember.set_rng_seed(2)
    per_element = []
    for _ in range(3):
        guide_tr = poutine.trace(local_guide).get_trace(DATA)
        model_tr = poutine.trace(poutine.replay(local_model, trace=guide_tr)).get_trace(DATA)
        model_tr.compute_log_prob()
        guide_tr.compute_log_prob()
        per_element.append(model_tr.nodes["z"]["log_prob"] + model_tr.nodes["x"]["log_prob"] - guide_tr.nodes["z"]["log_prob"])
    expected = -_bound(torch.stack(per_element), 0.5).sum().item()  # one bound per data point, summed
    ember.set_rng_seed(2)
    assert RenyiELBO(alpha=0.5, num_particles=3).loss(local_model, local_guide, DATA) == pytest.approx(expected, rel=1e-5)


class _PartlyReparameterized(dist.Normal):
    def score_parts(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ScoreParts:
        log_prob = self.log_prob(x)
        return ScoreParts(log_prob, log_prob, log_prob)


def test_partially_reparameterized_guide_sites_are_not_implemented() -> None:
    def partial_guide(data: torch.Tensor) -> None:
        ember.sample("z", _PartlyReparameterized(ember.param("loc", torch.tensor(0.0)), 1.0))

    with pytest.raises(NotImplementedError):
        RenyiELBO().loss_and_grads(model, partial_guide, DATA)


def test_no_sample_sites_means_a_zero_loss() -> None:
    elbo = RenyiELBO()
    assert elbo.loss(lambda: None, lambda: None) == 0.0
    assert elbo.loss_and_grads(lambda: None, lambda: None) == 0.0
    assert elbo.differentiable_loss(lambda: None, lambda: None).item() == 0.0


def test_score_function_sites_use_the_alpha_weighted_surrogate() -> None:
    def flip_model(data: torch.Tensor) -> None:
        ember.sample("b", dist.Bernoulli(0.5))

    def flip_guide(data: torch.Tensor) -> None:
        ember.sample("b", dist.Bernoulli(ember.param("p", torch.tensor(0.3), constraint=dist.constraints.unit_interval)))

    alpha = 0.5
    flip_guide(DATA)
    ember.set_rng_seed(9)
    draws = [poutine.trace(flip_guide).get_trace(DATA).nodes["b"]["value"] for _ in range(2)]
    ember.set_rng_seed(9)
    RenyiELBO(alpha=alpha, num_particles=2).loss_and_grads(flip_model, flip_guide, DATA)
    b = torch.stack(draws)
    log_w = dist.Bernoulli(0.5).log_prob(b) - dist.Bernoulli(0.3).log_prob(b)
    weights = torch.softmax((1 - alpha) * log_w, 0)
    # As in Pyro, each particle's score term is alpha / (1 - alpha) * log q, weighted by its normalized weight.
    dlogq = b - 0.3  # d log q / d logit
    expected = -(weights * (alpha / (1 - alpha)) * dlogq).sum()
    grad = dict(ember.get_param_store().named_parameters())["p"].grad
    assert grad is not None and grad.item() == pytest.approx(expected.item(), rel=1e-5)

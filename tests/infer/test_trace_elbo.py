"""Trace_ELBO against closed forms: conjugate models, exact guides, score-function gradients."""

from __future__ import annotations

import math

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import Trace_ELBO

DATA = torch.tensor([0.5, 1.5, -0.2])
FLIPS = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0])


def normal_model(data: torch.Tensor) -> None:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    with ember.plate("N", len(data)):
        ember.sample("x", dist.Normal(z, 1.0), obs=data)


def normal_guide(data: torch.Tensor) -> None:
    loc = ember.param("loc", torch.tensor(0.2))
    scale = ember.param("scale", torch.tensor(0.5), constraint=dist.constraints.positive)
    ember.sample("z", dist.Normal(loc, scale))


def _normal_log_evidence(data: torch.Tensor) -> float:
    n = len(data)
    cov = torch.eye(n) + torch.ones(n, n)  # x = z + noise, z ~ N(0, 1)
    return float(dist.MultivariateNormal(torch.zeros(n), cov).log_prob(data))


def _exact_normal_posterior(data: torch.Tensor) -> None:
    n = len(data)
    ember.param("loc", data.sum() / (n + 1))
    ember.param("scale", torch.tensor((n + 1) ** -0.5), constraint=dist.constraints.positive)


@pytest.mark.parametrize("vectorize_particles", [False, True])
def test_exact_guide_gives_the_log_evidence_for_every_particle(vectorize_particles: bool) -> None:
    _exact_normal_posterior(DATA)
    elbo = Trace_ELBO(num_particles=4, vectorize_particles=vectorize_particles)
    expected = -_normal_log_evidence(DATA)
    assert elbo.loss(normal_model, normal_guide, DATA) == pytest.approx(expected, abs=1e-4)
    assert elbo.loss_and_grads(normal_model, normal_guide, DATA) == pytest.approx(expected, abs=1e-4)
    assert elbo.differentiable_loss(normal_model, normal_guide, DATA).item() == pytest.approx(expected, abs=1e-4)


def _analytic_normal_elbo(loc: torch.Tensor, scale: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """E_q[log p(z) + sum log p(x|z)] + H(q) for q = N(loc, scale)."""
    n = len(data)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    prior = -half_log_2pi - 0.5 * (loc**2 + scale**2)
    likelihood = -n * half_log_2pi - 0.5 * (((data - loc) ** 2).sum() + n * scale**2)
    entropy = 0.5 + half_log_2pi + scale.log()
    return prior + likelihood + entropy


def test_reparameterized_loss_and_gradients_converge_to_the_closed_form() -> None:
    elbo = Trace_ELBO(num_particles=40000, vectorize_particles=True)
    loss = elbo.loss_and_grads(normal_model, normal_guide, DATA)
    leaves = dict(ember.get_param_store().named_parameters())
    loc_leaf = leaves["loc"].detach().clone().requires_grad_()
    log_scale_leaf = leaves["scale"].detach().clone().requires_grad_()
    analytic = _analytic_normal_elbo(loc_leaf, log_scale_leaf.exp(), DATA)
    torch.autograd.backward(-analytic)
    assert loss == pytest.approx(-analytic.item(), abs=0.02)
    for name, leaf in (("loc", loc_leaf), ("scale", log_scale_leaf)):
        estimate = leaves[name].grad
        assert estimate is not None and leaf.grad is not None
        assert estimate.item() == pytest.approx(leaf.grad.item(), abs=0.05)


def beta_model(flips: torch.Tensor) -> None:
    p = ember.sample("p", dist.Beta(2.0, 2.0))
    with ember.plate("N", len(flips)):
        ember.sample("x", dist.Bernoulli(p), obs=flips)


def beta_guide(flips: torch.Tensor) -> None:
    alpha = ember.param("alpha", torch.tensor(3.0), constraint=dist.constraints.positive)
    beta = ember.param("beta", torch.tensor(3.0), constraint=dist.constraints.positive)
    # Without rsample the guide's gradient comes from the score function alone.
    ember.sample("p", dist.Beta(alpha, beta).has_rsample_(False))


def _analytic_beta_elbo(alpha: torch.Tensor, beta: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    heads, n = flips.sum(), len(flips)
    e_log_p = torch.digamma(alpha) - torch.digamma(alpha + beta)
    e_log_not_p = torch.digamma(beta) - torch.digamma(alpha + beta)
    log_beta_prior = 2 * math.lgamma(2.0) - math.lgamma(4.0)
    entropy: torch.Tensor = dist.Beta(alpha, beta).entropy()
    return (1 + heads) * e_log_p + (1 + n - heads) * e_log_not_p - log_beta_prior + entropy


def test_score_function_elbo_at_the_exact_posterior_is_the_log_evidence() -> None:
    heads, n = float(FLIPS.sum()), len(FLIPS)
    ember.param("alpha", torch.tensor(2.0 + heads), constraint=dist.constraints.positive)
    ember.param("beta", torch.tensor(2.0 + n - heads), constraint=dist.constraints.positive)
    log_evidence = math.lgamma(2 + heads) + math.lgamma(2 + n - heads) - math.lgamma(4 + n) - (2 * math.lgamma(2.0) - math.lgamma(4.0))
    assert Trace_ELBO(num_particles=3).loss(beta_model, beta_guide, FLIPS) == pytest.approx(-log_evidence, abs=1e-4)


def test_score_function_gradient_expectation_matches_the_closed_form() -> None:
    elbo = Trace_ELBO(num_particles=100000, vectorize_particles=True)
    loss = elbo.loss_and_grads(beta_model, beta_guide, FLIPS)
    leaves = dict(ember.get_param_store().named_parameters())
    log_alpha = leaves["alpha"].detach().clone().requires_grad_()
    log_beta = leaves["beta"].detach().clone().requires_grad_()
    analytic = _analytic_beta_elbo(log_alpha.exp(), log_beta.exp(), FLIPS)
    torch.autograd.backward(-analytic)
    assert loss == pytest.approx(-analytic.item(), abs=0.01)
    for name, leaf in (("alpha", log_alpha), ("beta", log_beta)):
        estimate = leaves[name].grad
        assert estimate is not None and leaf.grad is not None
        # The estimator's standard deviation here is about 0.04 (measured over seeds).
        assert estimate.item() == pytest.approx(leaf.grad.item(), abs=0.12)


def test_plate_rao_blackwellization_weights_each_score_by_its_own_elements() -> None:
    data = torch.tensor([0.3, 2.0])

    def model() -> None:
        with ember.plate("N", 2):
            z = ember.sample("z", dist.Bernoulli(0.5))
            ember.sample("x", dist.Normal(z, 1.0), obs=data)

    def guide() -> None:
        probs = ember.param("probs", torch.tensor([0.3, 0.8]), constraint=dist.constraints.unit_interval)
        with ember.plate("N", 2):
            ember.sample("z", dist.Bernoulli(probs))

    ember.set_rng_seed(3)
    z = poutine.trace(guide).get_trace().nodes["z"]["value"]
    ember.set_rng_seed(3)
    Trace_ELBO().loss_and_grads(model, guide)
    probs = torch.tensor([0.3, 0.8])
    cost = (
        dist.Bernoulli(0.5).log_prob(z) + dist.Normal(z, 1.0).log_prob(data) - dist.Bernoulli(probs).log_prob(z)
    )
    # d log q / d logit = z - p, one element at a time; the loss is the negative ELBO.
    expected = -cost * (z - probs)
    grad = dict(ember.get_param_store().named_parameters())["probs"].grad
    assert grad is not None and torch.allclose(grad, expected, atol=1e-5)


def test_particles_average_single_particle_estimates_under_the_same_seed() -> None:
    ember.set_rng_seed(1)
    singles = [Trace_ELBO().loss(beta_model, beta_guide, FLIPS) for _ in range(3)]
    ember.set_rng_seed(1)
    assert Trace_ELBO(num_particles=3).loss(beta_model, beta_guide, FLIPS) == pytest.approx(sum(singles) / 3, rel=1e-6)


def test_differentiable_loss_has_the_loss_value_and_the_surrogate_gradient() -> None:
    ember.set_rng_seed(2)
    loss = Trace_ELBO().differentiable_loss(beta_model, beta_guide, FLIPS)
    torch.autograd.backward(loss)
    grads = {name: leaf.grad.clone() for name, leaf in ember.get_param_store().named_parameters() if leaf.grad is not None}
    for leaf in dict(ember.get_param_store().named_parameters()).values():
        leaf.grad = None
    ember.set_rng_seed(2)
    value = Trace_ELBO().loss_and_grads(beta_model, beta_guide, FLIPS)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad and loss.item() == pytest.approx(value, rel=1e-6)
    assert sorted(grads) == ["alpha", "beta"]
    for name, leaf in ember.get_param_store().named_parameters():
        assert leaf.grad is not None and torch.allclose(leaf.grad, grads[name])


def test_subsampling_scales_the_loss_by_size_over_subsample_size() -> None:
    data = torch.arange(6.0)

    def model() -> None:
        with ember.plate("N", 6, subsample_size=2) as idx:
            ember.sample("x", dist.Normal(0.0, 1.0), obs=data[idx])

    ember.set_rng_seed(0)
    idx = torch.randperm(6)[:2]
    ember.set_rng_seed(0)
    loss = Trace_ELBO().loss(model, lambda: None)
    assert loss == pytest.approx(-3.0 * float(dist.Normal(0.0, 1.0).log_prob(data[idx]).sum()), rel=1e-6)


def test_no_params_means_no_backward_and_a_float_loss() -> None:
    loss = Trace_ELBO().loss_and_grads(lambda: ember.sample("z", dist.Normal(0.0, 1.0)), lambda: ember.sample("z", dist.Normal(0.0, 1.0)))
    assert loss == 0.0 and isinstance(loss, float)
    assert Trace_ELBO().loss_and_grads(lambda: None, lambda: None) == 0.0
    assert float(Trace_ELBO().differentiable_loss(lambda: None, lambda: None)) == 0.0


def test_retain_graph_allows_a_second_backward_through_shared_tensors() -> None:
    shared = torch.tensor(0.5, requires_grad=True)
    loc = shared * 2

    def guide() -> None:
        ember.sample("z", dist.Normal(loc + ember.param("p", torch.tensor(0.0)), 1.0))

    def model() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    elbo = Trace_ELBO(retain_graph=True)
    elbo.loss_and_grads(model, guide)
    elbo.loss_and_grads(model, guide)  # the shared ``loc`` graph is still there
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        Trace_ELBO().loss_and_grads(model, guide)
        Trace_ELBO().loss_and_grads(model, guide)


@pytest.mark.filterwarnings("ignore:Encountered NaN. log_prob_sum")
def test_nan_loss_warns() -> None:
    def guide() -> None:
        ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(float("nan"))), 1.0, validate_args=False))

    with pytest.warns(UserWarning, match="Encountered NaN: loss"):
        Trace_ELBO().loss(lambda: ember.sample("z", dist.Normal(0.0, 1.0, validate_args=False)), guide)

"""TraceTailAdaptive_ELBO: Pyro's surrogate gradient on the same draws, and its restrictions."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import Trace_ELBO, TraceTailAdaptive_ELBO
from tests.parity._backends import Backend, run_both

DATA = torch.tensor([0.3, -1.2, 2.0, 0.7])


def _program(beta: float, num_particles: int) -> Any:
    def program(b: Backend) -> tuple[float, dict[str, torch.Tensor]]:
        def model() -> None:
            z = b.pyro.sample("z", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))
            with b.pyro.plate("N", 4):
                b.pyro.sample("x", b.dist.Normal(z.sum(-1, keepdim=True), 1.0), obs=DATA)

        def guide() -> None:
            loc = b.pyro.param("loc", torch.tensor([0.2, -0.1]))
            scale = b.pyro.param("scale", torch.tensor([0.8, 1.3]), constraint=b.dist.constraints.positive)
            b.pyro.sample("z", b.dist.Normal(loc, scale).to_event(1))

        elbo = b.infer.TraceTailAdaptive_ELBO(
            num_particles=num_particles, vectorize_particles=True, tail_adaptive_beta=beta
        )
        loss = elbo.differentiable_loss(model, guide)
        leaves = b.param_leaves()
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return loss.item(), dict(zip(leaves, grads))

    return program


@pytest.mark.parametrize("beta", [-1.0, -0.5])
def test_loss_and_gradient_equal_pyros_on_the_same_seed(beta: float) -> None:
    (ours, our_grads), (theirs, their_grads) = run_both(_program(beta, 7), seed=5)
    assert ours == theirs == float("inf")
    for name in their_grads:
        assert torch.allclose(our_grads[name], their_grads[name], rtol=1e-5, atol=1e-6), name


def _leaf() -> torch.Tensor:
    return dict(ember.get_param_store().named_parameters())["loc"]


def test_loss_and_grads_accumulates_the_same_gradient() -> None:
    def model() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    def guide() -> None:
        ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(1.0)), 1.0))

    elbo = TraceTailAdaptive_ELBO(num_particles=5, vectorize_particles=True, max_plate_nesting=0)
    ember.set_rng_seed(1)
    expected = torch.autograd.grad(elbo.differentiable_loss(model, guide), [_leaf()])[0]
    ember.set_rng_seed(1)
    assert elbo.loss_and_grads(model, guide) == float("inf")
    grad = _leaf().grad
    assert grad is not None and torch.allclose(grad, expected)


def test_one_particle_reduces_to_the_trace_elbo_gradient_with_a_warning() -> None:
    def model() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    def guide() -> None:
        ember.sample("z", dist.Normal(ember.param("loc", torch.tensor(1.0)), 1.0))

    ember.set_rng_seed(2)
    with pytest.warns(UserWarning, match="num_particles==1"):
        ours = torch.autograd.grad(
            TraceTailAdaptive_ELBO(num_particles=1, vectorize_particles=True, max_plate_nesting=0).differentiable_loss(model, guide), [_leaf()]
        )[0]
    ember.set_rng_seed(2)
    expected = torch.autograd.grad(Trace_ELBO().differentiable_loss(model, guide), [_leaf()])[0]
    assert torch.allclose(ours, expected)


def test_loss_is_not_defined_and_sequential_particles_are_refused() -> None:
    def model() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(NotImplementedError, match="Loss method for TraceTailAdaptive_ELBO not implemented"):
        TraceTailAdaptive_ELBO(num_particles=2, vectorize_particles=True).loss(model, model)
    with pytest.raises(NotImplementedError, match="vectorize_particles==True"):
        TraceTailAdaptive_ELBO(num_particles=2).differentiable_loss(model, model)


def test_a_guide_that_is_not_reparameterized_is_refused() -> None:
    def model() -> None:
        ember.sample("k", dist.Bernoulli(0.5))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NotImplementedError, match="fully reparameterized"):
            TraceTailAdaptive_ELBO(num_particles=3, vectorize_particles=True).differentiable_loss(model, model)

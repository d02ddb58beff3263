"""Trace_MMD: Pyro's loss and gradients on the same seed (with Pyro's own GP kernel), the MMD by hand."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pyro.contrib.gp.kernels import RBF

import ember
import ember.distributions as dist
from ember.infer import Trace_MMD
from tests.parity._backends import Backend, run_both

DATA = torch.tensor([[0.3, -1.2], [2.0, 0.7], [0.1, 0.0]])


def _program(vectorize: bool, num_particles: int) -> Any:
    def program(b: Backend) -> tuple[float, dict[str, torch.Tensor]]:
        def model() -> None:
            z = b.pyro.sample("z", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))
            with b.pyro.plate("N", 3):
                b.pyro.sample("x", b.dist.Normal(z, 0.5).to_event(1), obs=DATA)

        def guide() -> None:
            loc = b.pyro.param("loc", torch.tensor([0.2, -0.1]))
            scale = b.pyro.param("scale", torch.tensor([0.8, 1.3]), constraint=b.dist.constraints.positive)
            b.pyro.sample("z", b.dist.Normal(loc, scale).to_event(1))

        kernel = RBF(input_dim=2, lengthscale=torch.tensor(1.5))  # type: ignore[no-untyped-call]  # pyro.contrib.gp is unannotated
        elbo = b.infer.Trace_MMD(kernel=kernel, mmd_scale=2.0, num_particles=num_particles, vectorize_particles=vectorize)
        loss = elbo.differentiable_loss(model, guide)
        leaves = {name: b.param_leaves()[name] for name in ("loc", "scale")}  # not the kernel's
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return loss.item(), dict(zip(leaves, grads))

    return program


@pytest.mark.parametrize("vectorize, num_particles", [(True, 8), (False, 3)])
def test_loss_and_gradients_equal_pyros_on_the_same_seed(vectorize: bool, num_particles: int) -> None:
    (ours, our_grads), (theirs, their_grads) = run_both(_program(vectorize, num_particles), seed=4)
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert set(our_grads) == set(their_grads) == {"loc", "scale"}
    for name in their_grads:
        assert torch.allclose(our_grads[name], their_grads[name], rtol=1e-5, atol=1e-6), name


def _linear(x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
    return x @ (x if z is None else z).T


def test_with_a_linear_kernel_the_penalty_is_the_squared_mean_difference() -> None:
    # For k(x, z) = x.z, MMD^2 = |mean(prior draws) - mean(guide draws)|^2.
    def model() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    def guide() -> None:
        ember.sample("z", dist.Normal(3.0, 1.0))

    elbo = Trace_MMD(kernel=_linear, mmd_scale=0.5, num_particles=6, max_plate_nesting=0)
    ember.set_rng_seed(0)
    guide_draws = dist.Normal(3.0, 1.0).sample((6,))
    prior_draws = dist.Normal(0.0, 1.0).sample((6,))
    ember.set_rng_seed(0)
    loss = elbo.loss(model, guide)
    assert loss == pytest.approx(0.5 * (prior_draws.mean() - guide_draws.mean()).item() ** 2, rel=1e-5)


def test_per_site_kernels_and_scales_and_bad_arguments() -> None:
    elbo = Trace_MMD(kernel={"z": _linear}, mmd_scale={"z": 3.0})
    assert elbo.kernel["z"] is _linear and elbo.mmd_scale["z"] == 3.0
    module = RBF(input_dim=1)  # type: ignore[no-untyped-call]  # as above
    Trace_MMD(kernel=module)
    assert not any(p.requires_grad for p in module.parameters())
    with pytest.raises(TypeError, match="`kernel` should be a callable kernel"):
        Trace_MMD(kernel=3.0)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(TypeError, match="`mmd_scale` should be either float, or a dict of floats"):
        Trace_MMD(kernel=_linear, mmd_scale="big")  # type: ignore[arg-type]  # as above


def test_a_latent_site_that_is_not_reparameterized_is_refused() -> None:
    def model() -> None:
        ember.sample("k", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="Model site k is not reparameterizable"):
        Trace_MMD(kernel=_linear, num_particles=2).loss(model, model)

"""EnergyDistance: Pyro's loss and gradients on the same seed, the estimator by hand, bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import EnergyDistance
from tests.parity._backends import Backend, run_both

DATA = torch.tensor([[0.3, -1.2], [2.0, 0.7], [0.1, 0.0]])


def _program(beta: float, prior_scale: float) -> Any:
    def program(b: Backend) -> tuple[float, dict[str, torch.Tensor]]:
        def model() -> None:
            z = b.pyro.sample("z", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))
            with b.pyro.plate("N", 3):
                b.pyro.sample("x", b.dist.Normal(z, 0.5).to_event(1), obs=DATA)

        def guide() -> None:
            loc = b.pyro.param("loc", torch.tensor([0.2, -0.1]))
            scale = b.pyro.param("scale", torch.tensor([0.8, 1.3]), constraint=b.dist.constraints.positive)
            b.pyro.sample("z", b.dist.Normal(loc, scale).to_event(1))

        loss = b.infer.EnergyDistance(beta=beta, prior_scale=prior_scale, num_particles=5)(model, guide)
        leaves = b.param_leaves()
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return loss.item(), dict(zip(leaves, grads))

    return program


@pytest.mark.parametrize("beta, prior_scale", [(1.0, 0.0), (0.5, 0.3), (1.5, 1.0)])
def test_loss_and_gradients_equal_pyros_on_the_same_seed(beta: float, prior_scale: float) -> None:
    (ours, our_grads), (theirs, their_grads) = run_both(_program(beta, prior_scale), seed=3)
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert set(our_grads) == set(their_grads) == {"loc", "scale"}
    for name in their_grads:
        assert torch.allclose(our_grads[name], their_grads[name], rtol=1e-5, atol=1e-6), name


def test_loss_is_the_energy_score_of_the_predictive_draws() -> None:
    obs = torch.tensor(1.5)

    def model() -> None:
        z = ember.sample("z", dist.Normal(0.0, 1.0))
        ember.sample("x", dist.Normal(z, 1.0), obs=obs)

    def guide() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    loss_fn = EnergyDistance(num_particles=4, max_plate_nesting=1)
    ember.set_rng_seed(0)
    _, model_trace = loss_fn._get_traces(model, guide, (), {})
    x = model_trace.nodes["x"]["value"].reshape(4)
    ember.set_rng_seed(0)
    loss = loss_fn(model, guide)
    pair_terms = [(x[i] - x[j]).abs() for i in range(4) for j in range(i)]
    expected = (x - obs).abs().mean() - 0.5 * torch.stack(pair_terms).mean()
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 2.0}, r"Expected beta in \(0,2\), actual 2.0"),
        ({"prior_scale": -1.0}, "Expected prior_scale >= 0, actual -1.0"),
        ({"num_particles": 1}, "Expected num_particles >= 2, actual 1"),
    ],
)
def test_options_out_of_range_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EnergyDistance(**kwargs)


def test_a_guide_that_is_not_reparameterized_is_refused_naming_the_site() -> None:
    def model() -> None:
        k = ember.sample("k", dist.Bernoulli(0.5))
        ember.sample("x", dist.Normal(k, 1.0), obs=torch.tensor(0.0))

    def guide() -> None:
        ember.sample("k", dist.Bernoulli(ember.param("p", torch.tensor(0.3))))

    with pytest.raises(ValueError, match="EnergyDistance requires fully reparametrized guides; site 'k'"):
        EnergyDistance()(model, guide)
    assert ember.poutine.runtime.get_stack() == ()


def test_a_model_without_observations_is_refused() -> None:
    def model() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="Found no observations"):
        EnergyDistance()(model, model)
    with pytest.raises(NotImplementedError, match="only surrogate loss"):
        EnergyDistance().loss(model, model)

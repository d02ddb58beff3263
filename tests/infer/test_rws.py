"""ReweightedWakeSleep: a proposal that reduces importance-weight variance, Pyro's losses, bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import SVI, ReweightedWakeSleep
from ember.optim import ClippedAdam
from tests.parity._backends import Backend, run_both

X = torch.tensor(1.5)
POST_LOC, POST_SCALE = 0.8 * 1.5, 0.2**0.5  # z ~ N(0, 1), x ~ N(z, 0.5): the posterior of z


def model(x: torch.Tensor = X) -> None:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    ember.sample("x", dist.Normal(z, 0.5), obs=x)


def guide(x: torch.Tensor = X, observations: dict[str, torch.Tensor] | None = None) -> None:
    # Amortised: sleep-phi trains on the model's dreamt x, passed in ``observations``.
    x = x if observations is None else observations["x"]
    slope = ember.param("slope", torch.tensor(0.0))
    scale = ember.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    ember.sample("z", dist.Normal(slope * x, scale))


def _log_weight_variance(num_samples: int = 4000) -> float:
    with torch.no_grad(), ember.plate("samples", num_samples):
        guide_trace = poutine.trace(guide).get_trace()
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace()
    z = guide_trace.nodes["z"]["value"]
    q: Any = guide_trace.nodes["z"]["fn"]
    log_w = dist.Normal(0.0, 1.0).log_prob(z) + dist.Normal(z, 0.5).log_prob(X) - q.log_prob(z)
    assert torch.equal(model_trace.nodes["z"]["value"], z)
    return float(log_w.var())


@pytest.mark.parametrize("insomnia", [1.0, 0.0])
def test_training_the_guide_reduces_the_importance_weight_variance(insomnia: float) -> None:
    guide()
    before = _log_weight_variance()
    rws = ReweightedWakeSleep(num_particles=10, insomnia=insomnia, model_has_params=False, max_plate_nesting=0)
    svi = SVI(model, guide, ClippedAdam({"lr": 0.1, "lrd": 0.99}), loss=rws)  # decays to 0.008
    for _ in range(250):
        svi.step()
    after = _log_weight_variance()
    # The posterior itself as proposal gives constant weights (variance 0).
    assert before > 1.0 and after < 0.05 * before
    assert ember.param("slope").item() * X.item() == pytest.approx(POST_LOC, abs=0.1)
    assert ember.param("scale").item() == pytest.approx(POST_SCALE, abs=0.1)
    assert ember.param("scale").item() == pytest.approx(POST_SCALE, abs=0.1)


def _rws_program(insomnia: float, vectorize: bool) -> Any:
    def program(b: Backend) -> tuple[tuple[float, float], dict[str, torch.Tensor]]:
        def model(observations: Any = None) -> None:  # Pyro passes the guide's keyword on
            z = b.pyro.sample("z", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))
            with b.pyro.plate("N", 3):
                b.pyro.sample("x", b.dist.Normal(z.sum(-1, keepdim=True), 1.0), obs=torch.tensor([0.5, 1.0, -0.3]))

        def guide(observations: Any = None) -> None:
            loc = b.pyro.param("loc", torch.tensor([0.2, -0.1]))
            b.pyro.sample("z", b.dist.Normal(loc, 0.9).to_event(1))

        rws = b.infer.ReweightedWakeSleep(num_particles=4, insomnia=insomnia, vectorize_particles=vectorize)
        losses = rws.loss_and_grads(model, guide)
        leaf = b.param_leaves()["loc"]
        assert leaf.grad is not None
        return losses, {"loc": leaf.grad.clone()}

    return program


@pytest.mark.parametrize("insomnia, vectorize", [(1.0, True), (0.5, True), (0.0, False), (0.3, False)])
def test_losses_and_gradients_equal_pyros_on_the_same_seed(insomnia: float, vectorize: bool) -> None:
    (ours, our_grad), (theirs, their_grad) = run_both(_rws_program(insomnia, vectorize), seed=6)
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert torch.allclose(our_grad["loc"], their_grad["loc"], rtol=1e-5, atol=1e-6)


def test_loss_returns_the_pair_without_gradients() -> None:
    theta, phi = ReweightedWakeSleep(num_particles=3, insomnia=0.5).loss(model, guide)
    assert theta.shape == phi.shape == () and not theta.requires_grad and not phi.requires_grad


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_particles": 1}, "more than one particle, got num_particles=1"), ({"insomnia": 1.5}, r"insomnia should be in \[0, 1\], got 1.5")],
)
def test_bad_options_raise_pyros_assertion_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        ReweightedWakeSleep(**kwargs)

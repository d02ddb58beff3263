"""TraceGraph_ELBO: provenance tracking, downstream costs, and baselines."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import Trace_ELBO, TraceGraph_ELBO
from ember.infer.tracegraph_elbo import TrackNonReparam
from ember.ops.provenance import detach_provenance, get_provenance, track_provenance
from tests.parity._backends import Backend, assert_same_error

X = torch.tensor(1.5)


def test_provenance_flows_through_torch_ops_and_detaches() -> None:
    a = track_provenance(torch.tensor([1.0, 2.0]), frozenset({"a"}))
    b = track_provenance(torch.tensor(3.0), frozenset({"b"}))
    c = torch.tensor(4.0)
    assert get_provenance(a * b + c) == {"a", "b"}
    assert get_provenance(torch.stack([a.sum(), c])) == {"a"}
    assert get_provenance(a + detach_provenance(b)) == {"a"}
    assert get_provenance(c) == frozenset() and get_provenance(1.0) == frozenset()
    assert type(detach_provenance(a)) is torch.Tensor and detach_provenance(a) is detach_provenance(a)
    assert isinstance(a.shape, torch.Size) and a.shape == (2,)
    assert get_provenance(track_provenance(a, frozenset({"z"}))) == {"a", "z"}
    pair = track_provenance((torch.ones(1), [torch.zeros(1)]), frozenset({"p"}))
    assert get_provenance(pair[0]) == get_provenance(pair[1][0]) == {"p"}
    assert track_provenance(c, frozenset()) is c


def test_provenance_keeps_autograd() -> None:
    leaf = torch.tensor(2.0, requires_grad=True)
    tagged = track_provenance(leaf * 3, frozenset({"t"}))
    torch.autograd.backward(detach_provenance((tagged**2).sum()))
    assert leaf.grad is not None and leaf.grad.item() == 36.0


def test_track_non_reparam_tags_only_latent_non_reparameterized_sites() -> None:
    def model() -> None:
        a = ember.sample("a", dist.Bernoulli(0.3))
        r = ember.sample("r", dist.Normal(a, 1.0))
        with ember.plate("N", 2, subsample_size=1):
            ember.sample("x", dist.Normal(r, 1.0), obs=torch.zeros(1))

    with TrackNonReparam():
        tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    assert get_provenance(tr.nodes["a"]["value"]) == {"a"}
    assert get_provenance(tr.nodes["r"]["value"]) == {"a"}  # through its loc
    assert get_provenance(tr.nodes["x"]["log_prob"]) == {"a"}
    assert get_provenance(tr.nodes["N"]["value"]) == frozenset()


def _two_flips(baseline_a: dict[str, Any] | None = None) -> tuple[Any, Any]:
    def model() -> None:
        ember.sample("a", dist.Bernoulli(0.5))
        b = ember.sample("b", dist.Bernoulli(0.5))
        ember.sample("x", dist.Normal(b, 1.0), obs=X)

    def guide() -> None:
        probs = ember.param("probs", torch.tensor([0.3, 0.8]), constraint=dist.constraints.unit_interval)
        ember.sample("a", dist.Bernoulli(probs[0]), infer={"baseline": baseline_a} if baseline_a else {})
        ember.sample("b", dist.Bernoulli(probs[1]))

    return model, guide


def _draws(guide: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    ember.set_rng_seed(seed)
    tr = poutine.trace(guide).get_trace()
    return tr.nodes["a"]["value"], tr.nodes["b"]["value"]


def _grad(name: str) -> torch.Tensor:
    grad = dict(ember.get_param_store().named_parameters())[name].grad
    assert grad is not None
    return grad


def _costs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The downstream costs of ``a`` (itself only) and ``b`` (itself and ``x``)."""
    probs = torch.tensor([0.3, 0.8])
    cost_a = dist.Bernoulli(0.5).log_prob(a) - dist.Bernoulli(probs[0]).log_prob(a)
    cost_b = dist.Bernoulli(0.5).log_prob(b) + dist.Normal(b, 1.0).log_prob(X) - dist.Bernoulli(probs[1]).log_prob(b)
    return cost_a, cost_b


def test_each_score_is_weighted_by_its_downstream_cost_only() -> None:
    model, guide = _two_flips()
    a, b = _draws(guide, seed=5)
    ember.set_rng_seed(5)
    TraceGraph_ELBO().loss_and_grads(model, guide)
    cost_a, cost_b = _costs(a, b)
    probs = torch.tensor([0.3, 0.8])
    # d log q / d logit = value - p; the loss is the negative ELBO.
    expected = -torch.stack([cost_a * (a - probs[0]), cost_b * (b - probs[1])])
    assert torch.allclose(_grad("probs"), expected, atol=1e-5)

    # Trace_ELBO weights both scores by the whole cost instead.
    ember.clear_param_store()
    ember.set_rng_seed(5)
    Trace_ELBO().loss_and_grads(model, guide)
    total = cost_a + cost_b
    assert torch.allclose(_grad("probs"), -torch.stack([total * (a - probs[0]), total * (b - probs[1])]), atol=1e-5)


def test_decaying_average_baseline_tracks_the_cost_in_the_param_store() -> None:
    model, guide = _two_flips({"use_decaying_avg_baseline": True, "baseline_beta": 0.75})
    elbo = TraceGraph_ELBO()
    average = torch.tensor(0.0)
    for seed in (1, 2):
        a, b = _draws(guide, seed)
        ember.set_rng_seed(seed)
        elbo.loss_and_grads(model, guide)
        cost_a, _ = _costs(a, b)
        average = 0.25 * cost_a + 0.75 * average
        stored = ember.get_param_store()["__baseline_avg_downstream_cost_a"]
        assert torch.allclose(stored, average)
        assert type(stored) is torch.Tensor or get_provenance(stored) == frozenset()


def test_first_decaying_average_step_uses_a_zero_baseline() -> None:
    model, guide = _two_flips({"use_decaying_avg_baseline": True})
    a, b = _draws(guide, seed=3)
    ember.set_rng_seed(3)
    TraceGraph_ELBO().loss_and_grads(model, guide)
    cost_a, _ = _costs(a, b)
    assert torch.allclose(_grad("probs")[0], -cost_a * (a - 0.3), atol=1e-5)


def test_value_baseline_is_subtracted_and_fit_by_squared_error() -> None:
    def guide() -> None:
        probs = ember.param("probs", torch.tensor([0.3, 0.8]), constraint=dist.constraints.unit_interval)
        value = ember.param("value", torch.tensor(-0.25))
        ember.sample("a", dist.Bernoulli(probs[0]), infer={"baseline": {"baseline_value": value}})
        ember.sample("b", dist.Bernoulli(probs[1]))

    model, _ = _two_flips()
    a, b = _draws(guide, seed=4)
    ember.set_rng_seed(4)
    TraceGraph_ELBO().loss_and_grads(model, guide)
    cost_a, _ = _costs(a, b)
    assert torch.allclose(_grad("probs")[0], -(cost_a + 0.25) * (a - 0.3), atol=1e-5)
    assert torch.allclose(_grad("value"), -2 * (cost_a + 0.25), atol=1e-5)


def test_neural_baseline_gets_its_input_detached_and_learns_from_the_cost() -> None:
    net = torch.nn.Linear(1, 1)
    torch.nn.init.constant_(net.weight, 0.5)
    torch.nn.init.constant_(net.bias, 0.1)
    feature = torch.tensor([2.0], requires_grad=True)

    def guide() -> None:
        ember.module("net", net)
        probs = ember.param("probs", torch.tensor([0.3, 0.8]), constraint=dist.constraints.unit_interval)
        baseline = {"nn_baseline": lambda x: net(x).squeeze(-1), "nn_baseline_input": feature}
        ember.sample("a", dist.Bernoulli(probs[0]), infer={"baseline": baseline})
        ember.sample("b", dist.Bernoulli(probs[1]))

    model, _ = _two_flips()
    a, b = _draws(guide, seed=6)
    ember.set_rng_seed(6)
    TraceGraph_ELBO().loss_and_grads(model, guide)
    cost_a, _ = _costs(a, b)
    prediction = 0.5 * 2.0 + 0.1
    assert torch.allclose(_grad("probs")[0], -(cost_a - prediction) * (a - 0.3), atol=1e-5)
    assert net.bias.grad is not None and torch.allclose(net.bias.grad, -2 * (cost_a - prediction), atol=1e-5)
    assert feature.grad is None


def test_differentiable_loss_agrees_with_loss_and_grads_including_the_baseline_loss() -> None:
    def guide() -> None:
        probs = ember.param("probs", torch.tensor([0.3, 0.8]), constraint=dist.constraints.unit_interval)
        value = ember.param("value", torch.tensor(-0.25))
        ember.sample("a", dist.Bernoulli(probs[0]), infer={"baseline": {"baseline_value": value}})
        ember.sample("b", dist.Bernoulli(probs[1]))

    model, _ = _two_flips()
    ember.set_rng_seed(7)
    loss = TraceGraph_ELBO().differentiable_loss(model, guide)
    torch.autograd.backward(loss)
    grads = {name: leaf.grad.clone() for name, leaf in ember.get_param_store().named_parameters() if leaf.grad is not None}
    for leaf in dict(ember.get_param_store().named_parameters()).values():
        leaf.grad = None
    ember.set_rng_seed(7)
    value = TraceGraph_ELBO().loss_and_grads(model, guide)
    assert loss.item() == pytest.approx(value, rel=1e-6)
    assert sorted(grads) == ["probs", "value"]
    assert all(torch.allclose(_grad(name), grad) for name, grad in grads.items())
    ember.set_rng_seed(7)
    assert TraceGraph_ELBO().loss(model, guide) == pytest.approx(value, rel=1e-6)


def _baseline_error_program(baseline: dict[str, Any]) -> Any:
    def program(b: Backend) -> None:
        def model() -> None:
            b.pyro.sample("a", b.dist.Bernoulli(0.5))

        def guide() -> None:
            p = b.pyro.param("p", torch.tensor(0.4), constraint=b.dist.constraints.unit_interval)
            b.pyro.sample("a", b.dist.Bernoulli(p), infer={"baseline": baseline})

        b.infer.TraceGraph_ELBO().loss_and_grads(model, guide)

    return program


@pytest.mark.parametrize(
    ("baseline", "error", "pattern"),
    [
        ({"foo": 1}, ValueError, "Unrecognized baseline options: dict_keys(['foo'])"),
        (
            {"nn_baseline": torch.nn.Identity(), "nn_baseline_input": torch.zeros(()), "baseline_value": torch.zeros(())},
            AssertionError,
            "cannot use baseline_value and nn_baseline simultaneously",
        ),
        ({"baseline_value": torch.zeros(2)}, ValueError, "Expected baseline at site a to be () instead got torch.Size([2])"),
    ],
    ids=["unknown_option", "two_baselines", "baseline_shape"],
)
def test_bad_baselines_fail_like_pyro(baseline: dict[str, Any], error: type[Exception], pattern: str) -> None:
    ours, _ = assert_same_error(_baseline_error_program(baseline))
    assert isinstance(ours, error)
    assert re.search(re.escape(pattern), str(ours))

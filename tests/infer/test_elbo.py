"""The ELBO base class (options, particles, max_plate_nesting guess, ELBOModule) and get_importance_trace."""

from __future__ import annotations

import queue
from typing import Any

import pyro
import pyro.distributions
import pyro.infer
import pyro.infer.enum
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer
from ember import poutine
from ember.infer import ELBO, RenyiELBO, Trace_ELBO
from ember.infer.elbo import ELBOModule
from ember.infer.enum import (
    get_importance_trace,
    iter_discrete_escape,
    iter_discrete_extend,
    iter_discrete_traces,
)
from ember.poutine.guide import GuideMessenger
from tests.parity._backends import Backend, assert_same_value, run_both

OPTIONS = [
    "num_particles",
    "max_plate_nesting",
    "vectorize_particles",
    "strict_enumeration_warning",
    "ignore_jit_warnings",
    "jit_options",
    "retain_graph",
    "tail_adaptive_beta",
]


def test_defaults_match_pyro() -> None:
    ours, theirs = Trace_ELBO(), getattr(pyro.infer, "Trace_ELBO")()
    assert {k: getattr(ours, k) for k in OPTIONS} == {k: getattr(theirs, k) for k in OPTIONS}
    assert ours.max_plate_nesting == float("inf") and ours.num_particles == 1 and ours.tail_adaptive_beta == -1.0
    renyi, pyro_renyi = RenyiELBO(), getattr(pyro.infer, "RenyiELBO")()
    assert (renyi.alpha, renyi.num_particles) == (pyro_renyi.alpha, pyro_renyi.num_particles) == (0, 2)


def test_elbo_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ELBO()  # type: ignore[abstract]  # instantiating it is the error under test


def test_vectorized_particles_take_one_more_plate_dim() -> None:
    assert Trace_ELBO(num_particles=3, max_plate_nesting=2, vectorize_particles=True).max_plate_nesting == 3
    assert Trace_ELBO(num_particles=1, max_plate_nesting=2, vectorize_particles=True).max_plate_nesting == 2
    assert Trace_ELBO(num_particles=3, max_plate_nesting=2).max_plate_nesting == 2


def test_max_iarange_nesting_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="^max_iarange_nesting is deprecated; use max_plate_nesting instead$"):
        elbo = Trace_ELBO(max_iarange_nesting=2)
    assert elbo.max_plate_nesting == 2
    with pytest.warns(DeprecationWarning, match="max_iarange_nesting is deprecated"):
        assert RenyiELBO(max_iarange_nesting=1).max_plate_nesting == 1


def _plates_model(b: Backend) -> Any:
    def model() -> None:
        b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
        with b.pyro.plate("outer", 2, dim=-3), b.pyro.plate("inner", 3):
            b.pyro.sample("b", b.dist.Normal(0.0, 1.0))

    return model


@pytest.mark.parametrize("vectorize", [False, True])
def test_guessed_max_plate_nesting_matches_pyro(vectorize: bool) -> None:
    def program(b: Backend) -> Any:
        elbo = b.infer.Trace_ELBO(num_particles=2, vectorize_particles=vectorize)
        model = _plates_model(b)
        with b.poutine.trace() as outer:
            elbo._guess_max_plate_nesting(model, model, (), {})
        return elbo.max_plate_nesting, list(outer.trace.nodes)

    ours, theirs = run_both(program)
    assert ours == theirs
    assert ours[0] == (4 if vectorize else 3)
    assert ours[1] == []  # the guessing run is hidden from outer handlers


def test_guessing_checks_shapes_as_if_nothing_may_broadcast() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(torch.zeros(2), 1.0))

    elbo = Trace_ELBO(num_particles=2, vectorize_particles=True)
    with pytest.raises(ValueError, match='at site "x", invalid log_prob shape'):
        elbo.loss(model, model)


def test_get_traces_yields_one_pair_per_particle_or_one_vectorized_pair() -> None:
    def model() -> None:
        with ember.plate("N", 3):
            ember.sample("z", dist.Normal(0.0, 1.0))

    pairs = list(Trace_ELBO(num_particles=3)._get_traces(model, model, (), {}))
    assert len(pairs) == 3 and all(m.nodes["z"]["value"].shape == (3,) for m, _ in pairs)
    elbo = Trace_ELBO(num_particles=4, vectorize_particles=True)
    [(model_tr, guide_tr)] = list(elbo._get_traces(model, model, (), {}))
    assert elbo.max_plate_nesting == 2
    assert guide_tr.nodes["z"]["value"].shape == (4, 3)
    assert [(f.name, f.dim, f.size) for f in model_tr.nodes["z"]["cond_indep_stack"]] == [
        ("num_particles_vectorized", -2, 4),
        ("N", -1, 3),
    ]


def test_vectorized_particles_reuse_the_given_max_plate_nesting() -> None:
    elbo = Trace_ELBO(num_particles=2, vectorize_particles=True, max_plate_nesting=2)
    [(model_tr, _)] = list(elbo._get_traces(lambda: ember.sample("z", dist.Normal(0.0, 1.0)), lambda: ember.sample("z", dist.Normal(0.0, 1.0)), (), {}))
    assert model_tr.nodes["z"]["value"].shape == (2, 1, 1)


class _Model(torch.nn.Module):
    def forward(self, data: torch.Tensor) -> None:
        z = ember.sample("z", dist.Normal(0.0, 1.0))
        ember.sample("x", dist.Normal(z, 1.0), obs=data)


class _Guide(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.loc = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, data: torch.Tensor) -> None:
        ember.sample("z", dist.Normal(self.loc, 1.0))


def test_elbo_module_is_a_torch_module_whose_forward_is_the_differentiable_loss() -> None:
    model, guide = _Model(), _Guide()
    module = Trace_ELBO()(model, guide)
    assert isinstance(module, ELBOModule) and isinstance(module, torch.nn.Module)
    assert [name for name, _ in module.named_parameters()] == ["guide.loc"]
    data = torch.tensor(2.0)
    ember.set_rng_seed(0)
    loss = module(data)
    ember.set_rng_seed(0)
    assert torch.equal(loss, Trace_ELBO().differentiable_loss(model, guide, data))
    for _ in range(30):  # plain gradient descent on module.parameters()
        module.zero_grad()
        torch.autograd.backward(module(data))
        with torch.no_grad():
            for parameter in module.parameters():
                assert parameter.grad is not None
                parameter.sub_(0.1 * parameter.grad)
    assert 0.5 < guide.loc.item() < 1.5  # the posterior mean is 1
    assert len(ember.get_param_store()) == 0


def test_base_class_losses_are_not_implemented() -> None:
    class Minimal(ELBO):
        def _get_trace(self, model: Any, guide: Any, args: Any, kwargs: Any) -> Any:
            raise AssertionError

    for method in ("loss", "differentiable_loss", "loss_and_grads"):
        with pytest.raises(NotImplementedError):
            getattr(Minimal(), method)(None, None)


# --- get_importance_trace ---------------------------------------------------------------------


def _subsampled_pair(b: Backend) -> tuple[Any, Any]:
    def model(data: torch.Tensor) -> None:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
        flip = b.pyro.sample("flip", b.dist.Bernoulli(0.5))
        with b.pyro.plate("N", 4, subsample_size=2) as idx:
            b.pyro.sample("x", b.dist.Normal(loc + flip, 1.0), obs=data[idx])

    def guide(data: torch.Tensor) -> None:
        loc = b.pyro.param("loc_q", torch.tensor(0.3))
        b.pyro.sample("loc", b.dist.Normal(loc, 2.0))
        b.pyro.sample("flip", b.dist.Bernoulli(0.3))
        with b.pyro.plate("N", 4, subsample_size=2):
            pass

    return model, guide


@pytest.mark.parametrize("graph_type", ["flat", "dense"])
def test_get_importance_trace_matches_pyro(graph_type: str) -> None:
    data = torch.tensor([0.1, 0.2, 0.3, 0.4])

    def program(b: Backend) -> Any:
        model, guide = _subsampled_pair(b)
        get = get_importance_trace if b.name == "ember" else pyro.infer.enum.get_importance_trace
        model_tr, guide_tr = get(graph_type, float("inf"), model, guide, (data,), {})
        return {
            "model_nodes": list(model_tr.nodes),
            "guide_nodes": list(guide_tr.nodes),
            "log_prob": {n: s["log_prob"] for n, s in model_tr.nodes.items() if s["type"] == "sample"},
            "score_parts": {n: tuple(s["score_parts"]) for n, s in guide_tr.nodes.items() if s["type"] == "sample"},
            "edges": sorted(model_tr.edges),
            "guide_edges": sorted(guide_tr.edges),
        }

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs)
    assert "N" not in ours["model_nodes"] and "N" not in ours["guide_nodes"]
    assert bool(ours["edges"]) == (graph_type == "dense")


def test_get_importance_trace_detach_cuts_the_guide_values_from_autograd() -> None:
    model, guide = _subsampled_pair(poutine_backend())
    data = torch.zeros(4)
    _, guide_tr = get_importance_trace("flat", 1, model, guide, (data,), {})
    assert guide_tr.nodes["loc"]["value"].requires_grad
    model_tr, guide_tr = get_importance_trace("flat", 1, model, guide, (data,), {}, detach=True)
    assert not guide_tr.nodes["loc"]["value"].requires_grad
    assert model_tr.nodes["loc"]["value"] is guide_tr.nodes["loc"]["value"]


def poutine_backend() -> Backend:
    from tests.parity._backends import EMBER

    return EMBER


def test_get_importance_trace_sites_reach_outer_handlers() -> None:
    model, guide = _subsampled_pair(poutine_backend())
    with poutine.trace(param_only=True) as params:
        get_importance_trace("flat", 1, model, guide, (torch.zeros(4),), {})
    assert list(params.trace.nodes) == ["loc_q"]


class _PointGuide(GuideMessenger):
    def get_posterior(self, name: str, prior: Any) -> Any:
        return dist.Normal(ember.param(f"{name}_loc", torch.tensor(0.5)), 1.0)


def test_get_importance_trace_lets_a_guide_messenger_build_both_traces() -> None:
    def model() -> None:
        z = ember.sample("z", dist.Normal(0.0, 1.0))
        ember.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(1.0))

    guide = _PointGuide(model)
    model_tr, guide_tr = get_importance_trace("flat", float("inf"), model, guide, (), {})
    assert [n for n, s in guide_tr.nodes.items() if s["type"] == "sample"] == ["z"]
    assert "score_parts" in guide_tr.nodes["z"] and "log_prob" in model_tr.nodes["x"]
    guide_fn: Any = guide_tr.nodes["z"]["fn"]
    model_fn: Any = model_tr.nodes["z"]["fn"]
    assert guide_fn.loc.item() == 0.5 and model_fn.loc.item() == 0.0
    with pytest.raises(NotImplementedError, match="^GuideMessenger does not support detach$"):
        get_importance_trace("flat", float("inf"), model, guide, (), {}, detach=True)
    ember.set_rng_seed(0)
    loss = Trace_ELBO().loss(model, guide)
    ember.set_rng_seed(0)
    model_tr, guide_tr = get_importance_trace("flat", float("inf"), model, guide, (), {})
    expected = torch.as_tensor(guide_tr.log_prob_sum() - model_tr.log_prob_sum()).item()
    assert loss == pytest.approx(expected, rel=1e-6)


def test_iter_discrete_traces_enumerates_sequential_sites_like_pyro() -> None:
    def program(b: Backend) -> Any:
        def model() -> None:
            b.pyro.sample("a", b.dist.Bernoulli(0.3), infer={"enumerate": "sequential"})
            b.pyro.sample("b", b.dist.Categorical(torch.ones(3) / 3), infer={"enumerate": "sequential"})
            b.pyro.sample("c", b.dist.Normal(0.0, 1.0))

        iterate = iter_discrete_traces if b.name == "ember" else pyro.infer.enum.iter_discrete_traces
        traces = list(iterate("flat", model))
        return [
            (float(tr.nodes["a"]["value"]), int(tr.nodes["b"]["value"]), tr.nodes["a"]["infer"]["_enum_total"])
            for tr in traces
        ]

    ours, theirs = run_both(program)
    assert ours == theirs and len(ours) == 6 and {x[2] for x in ours} == {2}


def test_iter_discrete_helpers() -> None:
    def model() -> None:
        ember.sample("s", dist.Bernoulli(0.5), infer={"enumerate": "sequential"})

    pending: queue.LifoQueue[Any] = queue.LifoQueue()
    pending.put(poutine.Trace())
    tr = poutine.trace(poutine.queue(model, pending, escape_fn=iter_discrete_escape, extend_fn=iter_discrete_extend)).get_trace()
    assert tr.nodes["s"]["infer"]["_enum_total"] == 2
    assert not iter_discrete_escape(tr, tr.nodes["s"])  # already in the trace

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

import pyro.poutine.guide as pyro_guide
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import GuideMessenger
from tests.parity._backends import EMBER, Backend, assert_same_value, assert_traces_match, run_both

DATA = torch.tensor([1.0, 2.0, 3.0])


def model(data: torch.Tensor) -> None:
    loc = ember.sample("loc", dist.Normal(0.0, 10.0))
    with ember.plate("data", len(data)):
        z = ember.sample("z", dist.Normal(loc, 1.0))
        ember.deterministic("twice", 2 * z)
        ember.sample("obs", dist.Normal(z, 1.0), obs=data)


class FixedGuide(GuideMessenger):
    """A point mass for ``loc``; a fixed-scale normal around a learnable loc for ``z``."""

    def get_posterior(self, name: str, prior: Any) -> Any:
        if name == "loc":
            return torch.tensor(0.3)
        self.seen = (self.upstream_value("loc"), getattr(self, "args_kwargs", None), prior)
        return dist.Normal(ember.param("z_loc", torch.tensor(1.5)), 0.5)


def test_call_runs_the_model_and_returns_every_sample_value() -> None:
    guide = FixedGuide(model)
    samples = guide(DATA)
    assert list(samples) == ["loc", "z", "twice", "obs"]
    assert samples["loc"] == 0.3 and torch.equal(samples["obs"], DATA)
    assert torch.equal(samples["twice"], 2 * samples["z"]) and samples["z"].shape == (3,)
    upstream, args_kwargs, prior = guide.seen
    assert upstream == 0.3 and args_kwargs == ((DATA,), {})
    assert torch.all(prior.loc == 0.3) and prior.batch_shape == (3,)  # upstream draw, inner plate
    assert not hasattr(guide, "args_kwargs")
    assert guide.model is model


def test_traces_split_priors_and_posteriors() -> None:
    guide = FixedGuide(model)
    guide(DATA)
    model_trace, guide_trace = guide.get_traces()
    assert list(model_trace.nodes) == ["loc", "z_loc", "z", "twice", "obs"]  # no subsample site
    assert list(guide_trace.nodes) == ["loc", "z"]
    loc_posterior: Any = guide_trace.nodes["loc"]["fn"]
    assert type(loc_posterior).__name__ == "Delta" and loc_posterior.event_dim == 0
    z_posterior: Any = guide_trace.nodes["z"]["fn"]
    z_prior: Any = model_trace.nodes["z"]["fn"]
    assert z_posterior.batch_shape == (3,) and z_prior.batch_shape == (3,)  # both expanded to the plate
    assert guide_trace.nodes["z"]["infer"]["prior"] is z_prior
    z = guide_trace.nodes["z"]["value"]
    expected_guide = dist.Normal(1.5, 0.5).log_prob(z).sum()
    assert torch.allclose(torch.as_tensor(guide_trace.log_prob_sum()), expected_guide)
    expected_model = (
        dist.Normal(0.0, 10.0).log_prob(torch.tensor(0.3))
        + dist.Normal(0.3, 1.0).log_prob(z).sum()
        + dist.Normal(z, 1.0).log_prob(DATA).sum()
    )
    model_log_prob = torch.as_tensor(model_trace.log_prob_sum())
    assert torch.allclose(model_log_prob, expected_model)
    leaf = dict(ember.get_param_store().named_parameters())["z_loc"]
    (grad,) = torch.autograd.grad(model_log_prob, [leaf])  # the posterior's param reaches z
    assert grad.abs() > 0


def test_tensor_posterior_keeps_the_prior_event_dim_and_batch_is_expanded() -> None:
    class Point(GuideMessenger):
        def get_posterior(self, name: str, prior: Any) -> Any:
            return torch.zeros(prior.event_shape)  # one point for the whole batch

    def vector_model() -> None:
        with ember.plate("rows", 2):
            ember.sample("v", dist.Normal(torch.zeros(4), 1.0).to_event(1))

    guide = Point(vector_model)
    samples = guide()
    assert samples["v"].shape == (2, 4)
    posterior: Any = guide.get_traces()[1].nodes["v"]["fn"]
    assert posterior.event_dim == 1 and posterior.batch_shape == (2,)


def test_auxiliary_sites_belong_to_the_guide_only() -> None:
    # Deviation: Pyro hands auxiliary sites to get_posterior as well, recursing forever.
    class Auxiliary(GuideMessenger):
        def get_posterior(self, name: str, prior: Any) -> Any:
            u = ember.sample(f"{name}_u", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})
            return u + 1.0

    guide = Auxiliary(lambda: ember.sample("x", dist.Normal(0.0, 1.0)))
    samples = guide()
    assert list(samples) == ["x"]
    model_trace, guide_trace = guide.get_traces()
    assert list(model_trace.nodes) == ["x"] and list(guide_trace.nodes) == ["x_u", "x"]
    assert samples["x"] == guide_trace.nodes["x_u"]["value"] + 1.0


def test_context_manager_form_records_the_trace() -> None:
    guide = FixedGuide(model)
    with guide:
        model(DATA)
    assert list(guide.trace.nodes) == ["loc", "data", "z_loc", "z", "twice", "obs"]


def test_pyro_module_path_is_importable() -> None:
    module = importlib.import_module("ember.poutine.guide")
    assert module.GuideMessenger is GuideMessenger and poutine.guide is module


def test_abstract_without_get_posterior() -> None:
    with pytest.raises(TypeError, match="abstract"):
        GuideMessenger(model)  # type: ignore[abstract]  # deliberately incomplete


def test_pickling_drops_the_trace() -> None:
    guide = FixedGuide(model)
    guide(DATA)
    assert "trace" not in guide.__getstate__()
    buf = io.BytesIO()
    torch.save(guide, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert len(loaded.trace.nodes) == 0 and loaded.model is model
    assert list(loaded(DATA)) == ["loc", "z", "twice", "obs"]


class Amortized:
    """A guide built per instance, used through a method."""

    def __init__(self) -> None:
        self.guide = FixedGuide(self.model)

    def model(self, data: torch.Tensor) -> None:
        model(data)


def test_guide_of_a_bound_method() -> None:
    samples = Amortized().guide(DATA)
    assert list(samples) == ["loc", "z", "twice", "obs"]


def test_composition_with_trace_condition_and_block() -> None:
    guide = FixedGuide(poutine.condition(model, data={"loc": torch.tensor(-1.0)}))
    samples = guide(DATA)
    assert samples["loc"] == -1.0  # observed sites keep their value and prior
    assert list(guide.get_traces()[1].nodes) == ["z"]
    guide = FixedGuide(poutine.block(model, hide=["z"]))
    assert list(guide(DATA)) == ["loc", "twice", "obs"]  # "z" is drawn from its prior, unseen
    tr = poutine.trace(FixedGuide(model)).get_trace(DATA)
    assert list(tr.nodes) == ["_INPUT", "loc", "data", "z_loc", "z", "twice", "obs", "_RETURN"]
    posterior: Any = tr.nodes["z"]["fn"]
    assert torch.all(posterior.scale == 0.5)  # an outer trace records the posterior
    assert list(tr.nodes["_RETURN"]["value"]) == ["loc", "z", "twice", "obs"]


# ---------------------------------------------------------------------------------------------
# parity with pyro-ppl


def _backend_model(b: Backend) -> Any:
    def m(data: torch.Tensor) -> None:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 10.0))
        scale = b.pyro.sample("scale", b.dist.LogNormal(0.0, 1.0))
        with b.pyro.plate("data", len(data)):
            z = b.pyro.sample("z", b.dist.Normal(loc, scale))
            b.pyro.sample("obs", b.dist.Normal(z, 1.0), obs=data)

    return m


def _make_guide(base: Any, b: Backend) -> Any:
    class Guide(base):  # type: ignore[misc]  # a class built per backend
        def get_posterior(self, name: str, prior: Any) -> Any:
            if name == "loc":
                return torch.tensor(0.3)
            if name == "z":
                return b.dist.Normal(b.pyro.param("z_loc", torch.tensor(1.0)), 0.5)
            return prior

    return Guide(_backend_model(b))


def test_parity_with_pyro_guide_messenger() -> None:
    def program(b: Backend) -> Any:
        guide = _make_guide(GuideMessenger if b is EMBER else pyro_guide.GuideMessenger, b)
        samples = guide(DATA)
        model_trace, guide_trace = guide.get_traces()
        return samples, model_trace, guide_trace

    (ours_samples, ours_model, ours_guide), (theirs_samples, theirs_model, theirs_guide) = run_both(program, seed=4)
    assert_same_value(ours_samples, theirs_samples)
    assert_traces_match(ours_model, theirs_model)
    assert_traces_match(ours_guide, theirs_guide)
    assert_same_value(ours_model.log_prob_sum(), theirs_model.log_prob_sum())


def test_parity_of_an_outer_trace_and_outer_plate() -> None:
    def program(b: Backend) -> Any:
        guide = _make_guide(GuideMessenger if b is EMBER else pyro_guide.GuideMessenger, b)
        with b.pyro.plate("outer", 2, dim=-2):
            tr = b.poutine.trace(guide).get_trace(DATA)
        return tr, guide.get_traces()[0]

    (ours, ours_model), (theirs, theirs_model) = run_both(program, seed=6)
    assert_traces_match(ours, theirs)
    assert_traces_match(ours_model, theirs_model)
    assert ours_model.nodes["loc"]["fn"].batch_shape == (2, 1)  # the prior follows the outer plate

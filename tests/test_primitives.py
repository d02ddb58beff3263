from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints
from ember.poutine import runtime


def test_sample_outside_inference() -> None:
    x = ember.sample("x", dist.Normal(0.0, 1.0))
    assert x.shape == ()
    with pytest.warns(RuntimeWarning, match="trying to observe a value outside of inference at y"):
        assert ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.tensor(3.0)) == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ember.deterministic("d", torch.tensor(2.0)) == 2.0


def test_sample_with_non_distribution_is_type_error_naming_site() -> None:
    with pytest.raises(TypeError, match="'float' object is not callable: sample site 'x' expects a distribution, got 3.0"):
        ember.sample("x", 3.0)  # type: ignore[arg-type]  # the run-time error for a non-distribution is what this checks
    with pytest.raises(TypeError, match="use ember.distributions.Normal"):
        with poutine.trace():
            ember.sample("x", torch.distributions.Normal(0.0, 1.0))
    assert runtime.get_stack() == ()


def test_is_observed_override_in_infer() -> None:
    with poutine.trace() as tracer:
        ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0), infer={"is_observed": False})
    node = tracer.trace.nodes["x"]
    assert not node["is_observed"] and node["infer"] == {}


def test_factor_node_layout() -> None:
    lp = torch.tensor([1.0, 2.0])
    with poutine.trace() as tracer:
        ember.factor("f", lp)
    node = tracer.trace.nodes["f"]
    assert node["is_observed"] and node["infer"] == {"is_auxiliary": True}
    assert node["value"].shape == (2, 0)
    unit: Any = node["fn"]
    assert torch.equal(unit.log_prob(node["value"]), lp)
    assert tracer.trace.log_prob_sum() == 3.0


def test_deterministic_contributes_nothing() -> None:
    with poutine.trace() as tracer:
        ember.deterministic("d", torch.ones(3))
        ember.factor("f", torch.tensor(1.5))
    node = tracer.trace.nodes["d"]
    assert node["infer"] == {"_deterministic": True} and node["is_observed"]
    assert tracer.trace.log_prob_sum() == 1.5


def test_obs_mask_splits_into_three_sites() -> None:
    obs = torch.tensor([1.0, 2.0, 3.0])
    mask = torch.tensor([True, False, True])
    with poutine.trace() as tracer, ember.plate("N", 3):
        value = ember.sample("x", dist.Normal(0.0, 1.0), obs=obs, obs_mask=mask)
    nodes = tracer.trace.nodes
    assert list(nodes) == ["N", "x_observed", "x_unobserved", "x"]
    observed_mask: Any = nodes["x_observed"]["mask"]
    unobserved_mask: Any = nodes["x_unobserved"]["mask"]
    assert nodes["x_observed"]["is_observed"] and torch.equal(observed_mask, mask)
    assert not nodes["x_unobserved"]["is_observed"] and torch.equal(unobserved_mask, ~mask)
    assert torch.equal(value[mask], obs[mask]) and torch.equal(value[~mask], nodes["x_unobserved"]["value"][~mask])
    with pytest.raises(ValueError, match="Invalid obs_mask shape \\(2,\\); should be broadcastable to batch_shape = \\(3,\\)"):
        with ember.plate("M", 3):
            ember.sample("y", dist.Normal(0.0, 1.0), obs=obs, obs_mask=torch.tensor([True, False]))


def test_param_store_interaction_and_unknown_param() -> None:
    s = ember.param("s", torch.tensor(2.0), constraint=constraints.positive)
    constrained: Any = ember.get_param_store()["s"]
    assert getattr(s, "unconstrained")() is constrained.unconstrained()
    assert ember.param("s") is not s and torch.equal(ember.param("s"), s)
    keys_before = set(ember.get_param_store().keys())
    with pytest.raises(KeyError, match="missing"):
        with poutine.trace(), ember.plate("p", 2):
            ember.param("missing")
    assert set(ember.get_param_store().keys()) == keys_before
    assert runtime.get_stack() == () and runtime._DIM_ALLOCATOR._stack == []


def test_module_registers_parameters() -> None:
    lin = torch.nn.Linear(2, 1)
    ember.module("lin", lin)
    assert set(ember.get_param_store().keys()) == {"lin$$$weight", "lin$$$bias"}
    with pytest.raises(NotImplementedError, match="class constructors"):
        ember.module("cls", torch.nn.Linear)  # type: ignore[arg-type]  # deliberately wrong


def test_random_module_samples_parameters() -> None:
    lin = torch.nn.Linear(2, 1)
    with pytest.warns(FutureWarning):
        sampler = ember.random_module("lin", lin, prior=dist.Normal(0.0, 1.0))
    tr = poutine.trace(sampler).get_trace()
    assert {"lin$$$weight", "lin$$$bias"} <= set(tr.nodes)
    assert tr.nodes["lin$$$weight"]["type"] == "sample"
    sampled = tr.nodes["_RETURN"]["value"]
    assert torch.equal(sampled.weight, tr.nodes["lin$$$weight"]["value"])


def test_barrier_and_subsample_identity() -> None:
    x = torch.ones(2)
    assert ember.barrier(x) is x
    assert ember.subsample(x, event_dim=0) is x


def test_validation_switches() -> None:
    with ember.validation_enabled(False):
        assert not poutine.is_validation_enabled()
        assert not dist.is_validation_enabled()
    assert poutine.is_validation_enabled() and dist.is_validation_enabled()


def test_rng_state_roundtrip() -> None:
    state = ember.get_rng_state()
    a = torch.rand(3)
    ember.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_plate_with_device_argument() -> None:
    with ember.plate("p", 3, device="cpu") as idx:
        assert idx.device.type == "cpu"

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints


def model() -> Any:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    ember.sample("obs", dist.Normal(z, 1.0), obs=torch.tensor(1.0))
    return z


def test_replay_reuses_value_object_and_infer_dict() -> None:
    def guide() -> None:
        ember.sample("z", dist.Normal(3.0, 0.1), infer={"is_auxiliary": False})

    guide_tr = poutine.trace(guide).get_trace()
    model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace()
    assert model_tr.nodes["z"]["value"] is guide_tr.nodes["z"]["value"]
    assert model_tr.nodes["z"]["infer"] is guide_tr.nodes["z"]["infer"]
    assert model_tr.nodes["obs"]["value"] == 1.0


def test_replay_requires_trace_or_params() -> None:
    with pytest.raises(ValueError, match="must provide trace or params to replay against"):
        poutine.replay(model)


def test_replay_rejects_observed_guide_site() -> None:
    def guide() -> None:
        ember.sample("z", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    guide_tr = poutine.trace(guide).get_trace()
    with pytest.raises(RuntimeError, match="site z must be sampled in trace"):
        poutine.replay(model, trace=guide_tr)()


def test_replay_params() -> None:
    def m() -> torch.Tensor:
        return ember.param("s", torch.tensor(1.0), constraint=constraints.positive)

    ember.param("other", torch.tensor(4.0), constraint=constraints.positive)
    given = ember.get_param_store()["other"]
    tr = poutine.trace(poutine.replay(m, params={"s": given})).get_trace()
    assert tr.nodes["s"]["value"] is given
    with pytest.raises(AssertionError, match="param s must be constrained value"):
        poutine.replay(m, params={"s": torch.tensor(1.0)})()


def test_hand_built_trace_replays() -> None:
    tr = poutine.Trace()
    tr.add_node("z", type="sample", is_observed=False, value=torch.zeros(1), infer={})
    assert torch.equal(poutine.replay(model, tr)(), torch.zeros(1))

from __future__ import annotations

from typing import Any

import torch

import ember
import ember.distributions as dist
from ember import poutine


def model() -> Any:
    z = ember.sample("z", dist.Normal(0.0, 1.0))
    return ember.sample("y", dist.Normal(z, 1.0))


def test_condition_observes_given_values() -> None:
    tr = poutine.trace(poutine.condition(model, data={"z": torch.tensor(2.0)})).get_trace()
    assert tr.nodes["z"]["is_observed"] and tr.nodes["z"]["value"] == 2.0
    assert not tr.nodes["y"]["is_observed"]
    fn: Any = tr.nodes["y"]["fn"]
    assert fn.loc == 2.0


def test_condition_none_leaves_site_latent() -> None:
    tr = poutine.trace(poutine.condition(model, data={"z": None})).get_trace()
    assert not tr.nodes["z"]["is_observed"] and tr.nodes["z"]["value"] is not None


def test_condition_on_trace_uses_node_values() -> None:
    source = poutine.trace(model).get_trace()
    tr = poutine.trace(poutine.condition(model, data=source)).get_trace()
    assert tr.nodes["z"]["value"] is source.nodes["z"]["value"] and tr.nodes["y"]["is_observed"]


def test_condition_second_positional_argument_and_forms() -> None:
    tr = poutine.trace(poutine.condition(model, {"z": torch.tensor(0.5)})).get_trace()
    assert tr.nodes["z"]["value"] == 0.5
    with poutine.condition(data={"y": torch.tensor(1.5)}):
        assert model() == 1.5
    assert ember.condition(model, data={"y": torch.tensor(3.0)})() == 3.0


def test_condition_ignores_params() -> None:
    def m() -> torch.Tensor:
        return ember.param("p", torch.tensor(1.0))

    assert poutine.condition(m, data={"p": torch.tensor(5.0)})() == 1.0

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
import ember.poutine.reparam_messenger as messenger_module
from ember import poutine
from ember.infer import reparam as package
from ember.infer.reparam import Reparam
from ember.infer.reparam.reparam import ReparamMessage, ReparamResult


class _OldStyle(Reparam):
    """A reparameterizer written against the deprecated ``__call__`` protocol."""

    def __call__(self, name: str, fn: Any, obs: torch.Tensor | None) -> tuple[Any, torch.Tensor | None]:
        value = torch.tensor(2.0) if obs is None else obs
        return dist.Delta(value), value


def test_deprecated_call_protocol_still_works_with_a_warning() -> None:
    msg: ReparamMessage = {"name": "x", "fn": dist.Normal(0.0, 1.0), "value": None, "is_observed": False}
    with pytest.warns(DeprecationWarning, match=r"Reparam.__call__\(\) is deprecated in favor of .apply\(\)"):
        result = _OldStyle().apply(msg)
    assert result["value"] == 2.0 and result["is_observed"] is True  # a new value: now observed
    with pytest.warns(DeprecationWarning):
        observed = _OldStyle().apply({**msg, "value": torch.tensor(1.0), "is_observed": True})
    assert observed["is_observed"] is False  # Pyro's rule: observed only when the value is new


def test_old_protocol_under_reparam() -> None:
    def model() -> torch.Tensor:
        value: torch.Tensor = ember.sample("x", dist.Normal(0.0, 1.0))
        return value

    with pytest.warns(DeprecationWarning):
        tr = poutine.trace(poutine.reparam(model, {"x": _OldStyle()})).get_trace()
    assert tr.nodes["x"]["value"] == 2.0 and tr.nodes["x"]["is_observed"]


def test_base_class_call_is_not_implemented() -> None:
    class Empty(Reparam):
        pass

    with pytest.warns(DeprecationWarning), pytest.raises(NotImplementedError):
        Empty().apply({"name": "x", "fn": None, "value": None, "is_observed": False})


def test_unwrap_and_wrap_independent() -> None:
    fn = dist.Normal(torch.zeros(2, 3), 1.0).to_event(1).to_event(1)
    base, event_dim = Reparam()._unwrap(fn)
    assert type(base).__name__ == "Normal" and event_dim == 2
    assert Reparam()._wrap(base, 2).event_dim == 2


def test_message_types_are_shared_with_the_messenger() -> None:
    assert ReparamMessage is messenger_module.ReparamMessage
    assert ReparamResult is messenger_module.ReparamResult
    assert sorted(package.__all__) == package.__all__

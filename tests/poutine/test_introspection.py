"""Handlers and messengers are inspectable at run time: signatures, help() and repr."""

from __future__ import annotations

import inspect
import pydoc

import pyro.poutine
import torch

import ember
import ember.distributions as dist
from ember import poutine

_FACTORY_HANDLERS = [
    "block", "broadcast", "condition", "do", "enum", "equalize", "escape",
    "infer_config", "lift", "mask", "replay", "scale", "seed", "substitute", "uncondition",
]  # fmt: skip


def test_handler_signatures_name_the_messengers_parameters_as_pyro() -> None:
    for name in _FACTORY_HANDLERS:
        ours = list(inspect.signature(getattr(poutine, name)).parameters)
        theirs = list(inspect.signature(getattr(pyro.poutine, name)).parameters)
        assert ours == theirs, name
    # Pyro's collapse forwards *args/**kwargs to funsor; Ember's takes no settings.
    assert list(inspect.signature(poutine.collapse).parameters) == ["fn"]
    condition = inspect.signature(poutine.condition).parameters
    assert condition["fn"].default is inspect.Parameter.empty  # data is required, so fn shows no default
    block = inspect.signature(poutine.block).parameters
    assert block["fn"].default is None and block["hide_all"].default is True


def test_help_shows_the_signature_and_the_messengers_docstring() -> None:
    text = pydoc.plain(pydoc.render_doc(poutine.condition))
    assert "<handler condition(fn, data)>" in text
    assert "Condition sample sites on the values in ``data``" in text


def test_handlers_accept_fn_by_keyword_like_pyro() -> None:
    def model() -> torch.Tensor:
        return ember.sample("x", dist.Normal(0.0, 1.0))

    conditioned = poutine.condition(fn=model, data={"x": torch.tensor(0.5)})
    assert conditioned().item() == 0.5


def test_messenger_repr_shows_its_settings() -> None:
    assert repr(poutine.scale(scale=2.0)) == "ScaleMessenger(scale=2.0)"
    assert repr(poutine.trace()) == "TraceMessenger(graph_type='flat', param_only=False)"
    assert repr(poutine.condition(data={"x": 1.0})) == "ConditionMessenger(data={'x': 1.0})"
    assert repr(ember.plate("p", 3)) == "plate(name='p', size=3, subsample_size=3, dim=None, device=None)"

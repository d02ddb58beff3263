"""PyroOptim: lazy per-parameter optimizers, per-param arguments, clipping, state by param name."""

from __future__ import annotations

import pathlib
from typing import Any

import pyro
import pyro.optim
import pytest
import torch

import ember
import ember.optim
from ember.distributions import constraints
from ember.optim import PyroOptim


def _leaf(name: str) -> torch.Tensor:
    """The unconstrained leaf of param ``name`` (what SVI hands to the optimizer)."""
    return dict(ember.get_param_store().named_parameters())[name]


def _set_grads(grads: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    leaves = []
    for name, grad in grads.items():
        leaf = _leaf(name)
        leaf.grad = grad.clone()
        leaves.append(leaf)
    return leaves


def test_optimizers_are_created_per_param_on_first_call() -> None:
    ember.param("a", torch.tensor(1.0))
    ember.param("b", torch.tensor([1.0, 2.0]))
    optim = PyroOptim(torch.optim.SGD, {"lr": 0.5})
    assert optim.optim_objs == {}
    a = _set_grads({"a": torch.tensor(2.0)})[0]
    optim([a])
    assert list(optim.optim_objs) == [a]
    assert isinstance(optim.optim_objs[a], torch.optim.SGD)
    assert optim.optim_objs[a].param_groups[0]["params"] == [a]
    assert ember.param("a").item() == pytest.approx(0.0)
    b = _set_grads({"b": torch.tensor([1.0, 1.0])})[0]
    first = optim.optim_objs[a]
    optim([a, b])
    assert optim.optim_objs[a] is first, "a seen param keeps its optimizer"
    assert len(optim.optim_objs) == 2
    torch.testing.assert_close(ember.param("b").detach(), torch.tensor([0.5, 1.5]))


def test_step_args_are_passed_to_each_optimizer() -> None:
    ember.param("a", torch.tensor(1.0))
    leaf = _set_grads({"a": torch.tensor(1.0)})[0]
    calls: list[int] = []

    def closure() -> float:
        calls.append(1)
        return 0.0

    PyroOptim(torch.optim.SGD, {"lr": 0.1})([leaf], closure)
    assert calls == [1]


def test_callable_optim_args_with_one_argument_get_the_normalized_name() -> None:
    module = torch.nn.Linear(2, 1)
    ember.module("net", module)
    seen: list[str] = []

    def per_param(name: str) -> dict[str, Any]:
        seen.append(name)
        return {"lr": 0.1 if name.endswith("bias") else 0.0}

    optim = PyroOptim(torch.optim.SGD, per_param)
    leaves = [_leaf("net$$$weight"), _leaf("net$$$bias")]
    for leaf in leaves:
        leaf.grad = torch.ones_like(leaf)
    before = [leaf.detach().clone() for leaf in leaves]
    optim(leaves)
    assert seen == ["net.weight", "net.bias"]
    torch.testing.assert_close(leaves[0].detach(), before[0])
    torch.testing.assert_close(leaves[1].detach(), before[1] - 0.1)


def test_callable_optim_args_with_two_arguments_get_module_and_param_names() -> None:
    ember.module("net", torch.nn.Linear(2, 1))
    ember.param("plain", torch.tensor(0.0))
    seen: list[tuple[str, str]] = []

    def per_param(module_name: str, param_name: str) -> dict[str, Any]:
        seen.append((module_name, param_name))
        return {"lr": 0.1}

    leaves = [_leaf("net$$$bias"), _leaf("plain")]
    for leaf in leaves:
        leaf.grad = torch.ones_like(leaf)
    PyroOptim(torch.optim.SGD, per_param)(leaves)
    assert seen == [("net", "bias"), ("plain", "plain")]


def test_malformed_arguments_raise_assertion_errors_as_pyro() -> None:
    with pytest.raises(AssertionError, match="optim_args must be function that returns defaults or a defaults dictionary"):
        PyroOptim(torch.optim.SGD, [0.1])  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(AssertionError, match="clip_args must be function that returns defaults"):
        PyroOptim(torch.optim.SGD, {"lr": 0.1}, clip_args=1.0)  # type: ignore[arg-type]  # the wrong type is the point
    ember.param("a", torch.tensor(1.0))
    leaf = _set_grads({"a": torch.tensor(1.0)})[0]
    with pytest.raises(AssertionError, match="per-param optim arg must return defaults dictionary"):
        PyroOptim(torch.optim.SGD, lambda name: 0.1)([leaf])  # type: ignore[arg-type, return-value]  # the wrong type is the point
    with pytest.raises(AssertionError, match="per-param clip arg must return defaults dictionary"):
        PyroOptim(torch.optim.SGD, {"lr": 0.1}, lambda module, name: 1.0)([leaf])  # type: ignore[arg-type]  # the wrong type is the point
    assert ember.param("a").item() == 1.0, "a failed call leaves the param alone"


@pytest.mark.parametrize(
    ("clip_args", "expected"),
    [
        ({"clip_norm": 1.0}, torch.tensor([1.0 - 0.6, 1.0 - 0.8])),
        ({"clip_value": 0.5}, torch.tensor([0.5, 0.5])),
        ({"clip_norm": 10.0, "clip_value": 0.5}, torch.tensor([0.5, 0.5])),
    ],
)
def test_clip_args_clip_the_gradient_before_the_step(clip_args: dict[str, float], expected: torch.Tensor) -> None:
    ember.param("a", torch.tensor([1.0, 1.0]))
    leaf = _set_grads({"a": torch.tensor([3.0, 4.0])})[0]
    PyroOptim(torch.optim.SGD, {"lr": 1.0}, clip_args)([leaf])
    torch.testing.assert_close(leaf.detach(), expected)


def test_callable_clip_args_get_module_and_param_names() -> None:
    ember.param("a", torch.tensor([1.0]))
    seen: list[tuple[str, str]] = []

    def clip(module_name: str, param_name: str) -> dict[str, float]:
        seen.append((module_name, param_name))
        return {"clip_value": 0.1}

    leaf = _set_grads({"a": torch.tensor([5.0])})[0]
    PyroOptim(torch.optim.SGD, {"lr": 1.0}, clip)([leaf])
    assert seen == [("a", "a")]
    torch.testing.assert_close(leaf.detach(), torch.tensor([0.9]))


def test_state_round_trips_by_param_name_through_a_file(tmp_path: pathlib.Path) -> None:
    ember.param("a", torch.tensor(1.0))
    ember.param("s", torch.tensor(2.0), constraint=constraints.positive)
    optim = ember.optim.Adam({"lr": 0.1})
    for _ in range(3):
        optim(_set_grads({"a": torch.tensor(1.0), "s": torch.tensor(-1.0)}))
    state = optim.get_state()
    assert sorted(map(str, state)) == ["a", "s"]
    assert state["a"]["state"][0]["step"] == 3
    optim.save(tmp_path / "optim.pt")
    store_state = ember.get_param_store().get_state()

    ember.clear_param_store()
    ember.get_param_store().set_state(store_state)
    restored = ember.optim.Adam({"lr": 0.1})
    restored.load(tmp_path / "optim.pt")
    assert restored.optim_objs == {}, "loaded state waits for its params"
    restored(_set_grads({"a": torch.tensor(1.0)}))
    a_state = restored.get_state()["a"]["state"][0]
    assert a_state["step"] == 4
    torch.testing.assert_close(a_state["exp_avg"], optim.get_state()["a"]["state"][0]["exp_avg"] * 0.9 + 0.1)
    assert "s" in restored._state_waiting_to_be_consumed


def _run_optim(backend: Any, make: Any, steps: int = 4) -> dict[str, torch.Tensor]:
    """Step params a, b (positive) with fixed gradients using ``make(optim_module)``."""
    backend.clear_param_store()
    backend.param("a", torch.tensor([0.5, -1.0]))
    backend.param("b", torch.tensor(2.0), constraint=backend.distributions.constraints.positive)
    optim = make(backend.optim)
    store = backend.get_param_store()
    for step in range(steps):
        leaves = []
        for name, grad in (("a", torch.tensor([0.3, -2.0])), ("b", torch.tensor(1.5))):
            leaf = dict(store.named_parameters())[name]
            leaf.grad = grad * (step + 1)
            leaves.append(leaf)
        optim(leaves)
    return {name: leaf.detach().clone() for name, leaf in store.named_parameters()}


@pytest.mark.parametrize(
    "make",
    [
        lambda o: o.Adam({"lr": 0.1}),
        lambda o: o.SGD({"lr": 0.1, "momentum": 0.9}),
        lambda o: o.Adam({"lr": 0.1}, {"clip_norm": 0.5}),
        lambda o: o.RMSprop(lambda name: {"lr": 0.01 if name == "a" else 0.2}),
        lambda o: o.ClippedAdam({"lr": 0.1, "lrd": 0.9, "clip_norm": 2.0}),
        lambda o: o.AdagradRMSProp({"eta": 0.5}),
    ],
    ids=["adam", "sgd-momentum", "adam-clip", "rmsprop-per-param", "clipped-adam", "adagrad-rmsprop"],
)
def test_steps_match_pyro(make: Any) -> None:
    ours = _run_optim(ember, make)
    theirs = _run_optim(pyro, make)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name])


def test_get_state_keys_match_pyro() -> None:
    def states(backend: Any) -> Any:
        backend.clear_param_store()
        backend.param("a", torch.tensor(1.0))
        optim = backend.optim.Adam({"lr": 0.1})
        leaf = dict(backend.get_param_store().named_parameters())["a"]
        leaf.grad = torch.tensor(1.0)
        optim([leaf])
        state = optim.get_state()["a"]
        return sorted(state), sorted(state["state"][0]), state["param_groups"][0]["lr"]

    assert states(ember) == states(pyro)

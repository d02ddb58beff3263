from __future__ import annotations

import random
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import runtime


def test_seed_never_enters_stack_and_restores_rng() -> None:
    before = torch.get_rng_state()
    with poutine.seed(rng_seed=0) as s:
        assert s is None and runtime.get_stack() == ()
        a = torch.rand(())
        r = random.random()
    after = torch.rand(())
    torch.set_rng_state(before)
    assert torch.rand(()) == after  # the block left the outer RNG stream untouched
    with poutine.seed(rng_seed=0):
        assert torch.rand(()) == a and random.random() == r
    wrapped = poutine.seed(lambda: torch.rand(()), rng_seed=3)
    assert wrapped() == wrapped()


def test_substitute_params_only_and_warns_on_unused() -> None:
    def m() -> Any:
        a = ember.param("a", torch.tensor(1.0))
        b = ember.param("a", torch.tensor(1.0))
        ember.param("c", torch.tensor(1.0))
        s = ember.sample("s", dist.Normal(0.0, 1.0))
        return a, b, s

    with pytest.warns(UserWarning, match=r"pyro.module data did not find params \['q'\]. Did you instead mean one of \['c'\]\?"):
        a, b, s = poutine.substitute(m, data={"a": torch.tensor(5.0), "q": torch.tensor(0.0)})()
    assert a == 5.0 and b == 5.0
    with pytest.warns(UserWarning, match=r"did not find params \['s'\]"):
        _, _, s = poutine.substitute(m, data={"a": torch.tensor(2.0), "s": torch.tensor(9.0)})()
    assert s != 9.0  # sample sites are never substituted


def test_substitute_strips_module_prefix() -> None:
    def m() -> torch.Tensor:
        return ember.param("net$$$weight", torch.tensor(1.0))

    assert poutine.substitute(m, data={"weight": torch.tensor(4.0)})() == 4.0


def test_lift_turns_params_into_samples() -> None:
    def m() -> tuple[torch.Tensor, torch.Tensor]:
        return ember.param("s", torch.tensor(1.0)), ember.param("s", torch.tensor(1.0))

    tr = poutine.trace(poutine.lift(m, prior={"s": dist.Exponential(1.0)})).get_trace()
    node = tr.nodes["s"]
    assert node["type"] == "sample" and not node["is_observed"]
    assert node["args"] == () and node["kwargs"] == {} and node["infer"] == {}
    first, second = tr.nodes["_RETURN"]["value"]
    assert first is second
    with pytest.warns(UserWarning, match=r"pyro.module prior did not find params \['zz'\]"):
        poutine.lift(m, prior={"zz": dist.Normal(0.0, 1.0)})()


def test_lift_callable_prior_gets_init_and_is_stopped() -> None:
    calls: list[tuple[Any, ...]] = []

    def prior(init: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        calls.append((init, tuple(sorted(kwargs))))
        return init + 1

    def m() -> torch.Tensor:
        return ember.param("w", torch.tensor(1.0))

    tr = poutine.trace(poutine.lift(m, prior=prior)).get_trace()
    assert calls == [(torch.tensor(1.0), ("constraint", "event_dim"))]
    assert "w" not in tr.nodes and tr.nodes["_RETURN"]["value"] == 2.0

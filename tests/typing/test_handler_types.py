"""Static checks (run by mypy --strict) that each handler types in all three forms.

The functions also run under pytest, so the runtime objects match the static types.
"""

from __future__ import annotations

from typing import Callable

import torch
from typing_extensions import assert_type

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.trace_struct import Trace


def model(x: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    value: torch.Tensor = ember.sample("z", dist.Normal(x, scale))
    return value


X = torch.tensor(0.0)


def test_wrapping_keeps_the_model_signature() -> None:
    Wrapped = Callable[[torch.Tensor], torch.Tensor]
    conditioned = poutine.condition(model, data={"z": X})
    assert_type(conditioned(X, scale=2.0), torch.Tensor)
    blocked: Wrapped = poutine.block(model, hide=["z"])
    assert_type(poutine.scale(model, scale=2.0)(X), torch.Tensor)
    assert_type(poutine.mask(model, mask=True)(X), torch.Tensor)
    assert_type(poutine.seed(model, rng_seed=0)(X), torch.Tensor)
    assert_type(poutine.substitute(model, data={})(X), torch.Tensor)
    assert_type(poutine.uncondition(model)(X), torch.Tensor)
    assert_type(poutine.broadcast(model)(X), torch.Tensor)
    assert_type(poutine.lift(model, prior=dist.Normal(0.0, 1.0))(X), torch.Tensor)
    tr = poutine.trace(model).get_trace(X)
    assert_type(tr, Trace)
    assert_type(poutine.replay(model, trace=tr)(X), torch.Tensor)
    assert blocked(X).shape == ()


def test_messenger_forms() -> None:
    assert_type(poutine.condition(data={"z": X}), poutine.ConditionMessenger)
    assert_type(poutine.block(), poutine.BlockMessenger)
    assert_type(poutine.scale(scale=2.0), poutine.ScaleMessenger)
    assert_type(poutine.mask(mask=True), poutine.MaskMessenger)
    assert_type(poutine.trace(), poutine.TraceMessenger)
    assert_type(poutine.seed(rng_seed=1), poutine.SeedMessenger)
    assert_type(poutine.substitute(data={}), poutine.SubstituteMessenger)
    assert_type(poutine.uncondition(), poutine.UnconditionMessenger)
    assert_type(poutine.broadcast(), poutine.BroadcastMessenger)
    assert_type(poutine.lift(prior=dist.Normal(0.0, 1.0)), poutine.LiftMessenger)
    assert_type(poutine.replay(trace=poutine.Trace()), poutine.ReplayMessenger)
    with poutine.trace() as tracer, poutine.condition(data={"z": X}):
        model(X)
    assert_type(tracer.get_trace(), Trace)

    @poutine.scale(scale=3.0)
    def decorated(y: int) -> str:
        return str(y)

    assert_type(decorated(1), str)


def test_decorator_forms_keep_the_signature() -> None:
    def plain(y: int) -> str:
        return str(y)

    decorators = [
        poutine.block(hide=["z"]),
        poutine.broadcast(),
        poutine.condition(data={}),
        poutine.lift(prior={}),
        poutine.mask(mask=True),
        poutine.replay(trace=poutine.Trace()),
        poutine.scale(scale=2.0),
        poutine.seed(rng_seed=0),
        poutine.substitute(data={}),
        poutine.trace(),
        poutine.uncondition(),
    ]
    for decorator in decorators[:-2]:
        assert_type(decorator(plain)(3), str)
    traced = poutine.trace()(plain)
    assert_type(traced(3), str)
    assert_type(traced.get_trace(3), Trace)
    assert_type(poutine.uncondition()(plain)(4), str)


def test_wrong_argument_types_are_static_errors() -> None:
    # Each line below would fail mypy without its ignore; the unused-ignore check
    # (warn_unused_ignores under --strict) proves mypy rejects them.
    try:
        poutine.scale(model, scale="big")  # type: ignore[call-overload]
    except TypeError:
        pass
    try:
        poutine.condition(model, date={})  # type: ignore[call-overload]
    except TypeError:
        pass

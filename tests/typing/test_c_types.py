"""Static checks (mypy --strict) that ``reparam`` and ``collapse`` type in all three forms.

The functions also run under pytest, so the runtime objects match the static types.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from typing_extensions import assert_type

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.reparam import LocScaleReparam, Reparam, ReparamMessage, ReparamResult
from ember.poutine import GuideMessenger
from ember.poutine.message import Message

X = torch.tensor(0.5)
CONFIG = {"z": LocScaleReparam(centered=0.0)}


def model(x: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    value: torch.Tensor = ember.sample("z", dist.Normal(x, scale))
    return value


def conjugate(x: torch.Tensor) -> int:
    p = ember.sample("p", dist.Beta(2.0, 2.0))
    ember.sample("x", dist.Bernoulli(p), obs=x)
    return 3


def test_reparam_forms() -> None:
    wrapped = poutine.reparam(model, CONFIG)
    assert isinstance(wrapped, poutine.ReparamHandler)
    assert_type(wrapped(X, scale=2.0), torch.Tensor)
    assert_type(poutine.reparam(model, config=CONFIG)(X), torch.Tensor)
    assert_type(poutine.reparam(config=CONFIG), poutine.ReparamMessenger)
    assert_type(poutine.reparam(None, CONFIG), poutine.ReparamMessenger)

    def by_message(msg: Message) -> Reparam | None:
        return CONFIG.get(msg["name"] or "")

    assert_type(poutine.reparam(model, by_message)(X), torch.Tensor)
    with poutine.reparam(config=by_message):
        model(X)

    @poutine.reparam(config=CONFIG)
    def decorated(y: int) -> str:
        return str(y)

    assert_type(decorated(1), str)
    as_callable: Callable[[torch.Tensor], torch.Tensor] = wrapped
    assert as_callable(X).shape == ()


def test_collapse_forms() -> None:
    with poutine.trace() as tracer:
        assert_type(poutine.collapse(conjugate)(X), int)
    assert list(tracer.get_trace().nodes) == ["p"]
    assert_type(poutine.collapse(), poutine.CollapseMessenger)
    with poutine.trace(), poutine.collapse():
        conjugate(X)

    @poutine.collapse()
    def decorated(y: torch.Tensor) -> str:
        conjugate(y)
        return "done"

    with poutine.trace():
        assert_type(decorated(X), str)


class _Identity(Reparam):
    def apply(self, msg: ReparamMessage) -> ReparamResult:
        return {"fn": msg["fn"], "value": msg["value"], "is_observed": bool(msg["is_observed"])}


class _Point(GuideMessenger):
    def get_posterior(self, name: str, prior: Any) -> Any:
        return torch.tensor(0.0)


def test_reparameterizers_and_guides_type() -> None:
    config: dict[str, Reparam] = {"z": _Identity()}
    assert_type(poutine.reparam(model, config)(X), torch.Tensor)
    samples = _Point(model)(X)
    assert_type(samples, dict[str, torch.Tensor])
    assert samples["z"] == 0.0


def test_wrong_argument_types_are_static_errors() -> None:
    # Each line would fail mypy without its ignore; warn_unused_ignores proves mypy rejects it.
    try:
        poutine.reparam(model, config=3)  # type: ignore[call-overload]
    except AssertionError:
        pass
    try:
        poutine.collapse(model, 3)  # type: ignore[call-overload]
    except TypeError:
        pass

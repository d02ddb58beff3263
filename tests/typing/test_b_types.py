"""Static checks (run by mypy --strict) of the forms of ``enum``, ``markov`` and ``config_enumerate``.

The functions also run under pytest, so the runtime objects match the static types.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from typing_extensions import assert_type

import ember
import ember.distributions as dist
from ember import poutine


def model(x: torch.Tensor, *, probs: float = 0.5) -> torch.Tensor:
    value: torch.Tensor = ember.sample("z", dist.Bernoulli(probs), infer={"enumerate": "parallel"})
    return value + x


X = torch.tensor(0.0)


def test_enum_forms() -> None:
    assert_type(poutine.enum(model, -1)(X, probs=0.2), torch.Tensor)
    assert_type(poutine.enum(model, first_available_dim=-1)(X), torch.Tensor)
    messenger = poutine.enum(first_available_dim=-1)
    assert_type(messenger, poutine.EnumMessenger)
    with messenger as entered:
        assert_type(entered, poutine.EnumMessenger)
        assert model(X).shape == (2,)

    @poutine.enum(first_available_dim=-1)
    def decorated(y: int) -> str:
        return str(y)

    assert_type(decorated(1), str)


def test_markov_forms() -> None:
    assert_type(poutine.markov(), poutine.MarkovMessenger)
    assert_type(poutine.markov(history=2, keep=True), poutine.MarkovMessenger)
    wrapped: Callable[[torch.Tensor], torch.Tensor] = poutine.markov(model, history=2)
    assert_type(poutine.markov(model)(X, probs=0.1), torch.Tensor)
    steps = poutine.markov(range(2))
    assert_type(steps, Iterator[int])
    assert list(steps) == [0, 1]
    assert_type(poutine.markov(["a", "b"], history=0), Iterator[str])
    with poutine.markov() as entered:
        assert_type(entered, poutine.MarkovMessenger)

    @poutine.markov
    def bare(y: int) -> str:
        return str(y)

    @poutine.markov(history=3)
    def configured(y: int) -> bytes:
        return bytes(y)

    assert_type(bare(1), str)
    assert_type(configured(1), bytes)
    assert wrapped(X).shape == ()


def test_config_enumerate_forms() -> None:
    assert_type(poutine.config_enumerate(model)(X, probs=0.3), torch.Tensor)
    assert_type(poutine.config_enumerate(model, default="sequential", expand=True)(X), torch.Tensor)

    @poutine.config_enumerate
    def bare(y: int) -> str:
        return str(y)

    @poutine.config_enumerate(num_samples=10, tmc="mixture")
    def configured(y: int) -> bytes:
        return bytes(y)

    assert_type(bare(1), str)
    assert_type(configured(2), bytes)


def test_wrong_argument_types_are_static_errors() -> None:
    # Each line would fail mypy without its ignore; warn_unused_ignores proves mypy rejects it.
    try:
        poutine.enum(model, first_available_dim="left")  # type: ignore[call-overload]
    except (TypeError, AssertionError):
        pass
    try:
        poutine.markov(model, histori=1)  # type: ignore[call-overload]
    except TypeError:
        pass
    try:
        poutine.config_enumerate(model, expand="yes")  # type: ignore[call-overload]
    except ValueError:
        pass

"""Tests for the abstract ember.distributions.Distribution base."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ember.distributions import Distribution, ScoreParts


class _Coin(Distribution):
    """A minimal concrete distribution for these tests."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def sample(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls.append(args)
        return torch.tensor(1.0)

    def log_prob(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        value = args[0]
        assert isinstance(value, torch.Tensor)
        return torch.full_like(value, -0.5)


def test_distribution_is_abstract() -> None:
    class _Incomplete(Distribution):
        def sample(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            return torch.tensor(0.0)

    with pytest.raises(TypeError, match="abstract"):
        _Incomplete()  # type: ignore[abstract]  # the point of the test


def test_class_attribute_defaults() -> None:
    coin = _Coin()
    assert coin.has_rsample is False
    assert coin.has_enumerate_support is False


def test_call_forwards_arguments_to_sample() -> None:
    coin = _Coin()
    assert coin("shape").item() == 1.0
    assert coin.calls == [("shape",)]


def test_score_parts_for_score_function_distribution() -> None:
    value = torch.zeros(2)
    parts = _Coin().score_parts(value)
    assert isinstance(parts, ScoreParts)
    assert torch.equal(parts.log_prob, torch.full((2,), -0.5))
    assert parts.score_function is parts.log_prob
    assert parts.entropy_term == 0


def test_score_parts_for_reparameterized_distribution() -> None:
    coin = _Coin().has_rsample_(True)
    parts = coin.score_parts(torch.zeros(2))
    assert parts.score_function == 0
    assert parts.entropy_term is parts.log_prob


def test_has_rsample_sets_instance_only_and_returns_self() -> None:
    coin = _Coin()
    assert coin.has_rsample_(True) is coin
    assert coin.has_rsample is True
    assert _Coin().has_rsample is False
    assert coin.has_rsample_(False).has_rsample is False


@pytest.mark.parametrize("value", [1, 0, None, "yes"])
def test_has_rsample_rejects_non_bool(value: Any) -> None:
    with pytest.raises(ValueError, match=r"Expected value in \[False,True\], actual"):
        _Coin().has_rsample_(value)


def test_enumerate_support_not_implemented_names_class() -> None:
    with pytest.raises(NotImplementedError, match="Support not implemented for _Coin"):
        _Coin().enumerate_support()

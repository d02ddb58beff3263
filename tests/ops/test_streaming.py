"""Streaming statistics of ``ember.ops.streaming``: parity with pyro-ppl on the same streams,
merges equal to the statistics of the joined stream, bad input."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Hashable
from typing import Any

import pyro.ops.streaming
import pytest
import torch

from ember.ops import streaming

pyro_streaming: Any = pyro.ops.streaming  # pyro-ppl is not fully annotated

TENSOR_STATS = ["CountStats", "StackStats", "CountMeanStats", "CountMeanVarianceStats"]


def _stream(count: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    return [torch.randn(shape, dtype=torch.float64) for _ in range(count)]


def _assert_same_summary(actual: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected)
        for key in expected:
            _assert_same_summary(actual[key], expected[key])
    elif isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for mine, theirs in zip(actual, expected):
            _assert_same_summary(mine, theirs)
    elif isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)
    else:
        assert actual == expected


def _feed(stats: Any, samples: list[Any]) -> Any:
    for sample in samples:
        stats.update(sample)
    return stats


def test_public_names_and_constructor_parameters_match_pyro() -> None:
    assert set(streaming.__all__) == set(pyro_streaming.__all__)
    for name in streaming.__all__:
        ours = inspect.signature(getattr(streaming, name).__init__).parameters
        theirs = inspect.signature(getattr(pyro_streaming, name).__init__).parameters
        assert list(ours) == list(theirs), name


@pytest.mark.parametrize("shape", [(), (3,), (2, 4)])
@pytest.mark.parametrize("count", [0, 2, 9])
@pytest.mark.parametrize("name", TENSOR_STATS)
def test_tensor_statistics_equal_pyro(name: str, count: int, shape: tuple[int, ...]) -> None:
    samples = _stream(count, shape)
    ours = _feed(getattr(streaming, name)(), samples).get()
    _assert_same_summary(ours, _feed(getattr(pyro_streaming, name)(), samples).get())


@pytest.mark.parametrize("split", [0, 1, 4, 7])
@pytest.mark.parametrize("name", TENSOR_STATS)
def test_merge_equals_the_statistic_of_the_joined_stream_and_leaves_both_unchanged(name: str, split: int) -> None:
    samples = _stream(7, (3,))
    left = _feed(getattr(streaming, name)(), samples[:split])
    right = _feed(getattr(streaming, name)(), samples[split:])
    before = (copy.deepcopy(left.get()), copy.deepcopy(right.get())) if name != "CountMeanVarianceStats" else None
    merged = left.merge(right)
    assert type(merged) is type(left) and merged is not left and merged is not right
    _assert_same_summary(merged.get(), _feed(getattr(streaming, name)(), samples).get())
    theirs = _feed(getattr(pyro_streaming, name)(), samples[:split]).merge(
        _feed(getattr(pyro_streaming, name)(), samples[split:])
    )
    _assert_same_summary(merged.get(), theirs.get())
    if before is not None:
        _assert_same_summary((left.get(), right.get()), before)


def test_count_mean_variance_equals_torch_mean_and_unbiased_variance() -> None:
    samples = _stream(50, (2, 3))
    summary = _feed(streaming.CountMeanVarianceStats(), samples).get()
    stacked = torch.stack(samples)
    assert summary["count"] == 50
    torch.testing.assert_close(summary["mean"], stacked.mean(0))
    torch.testing.assert_close(summary["variance"], stacked.var(0))


def test_statistics_detach_their_samples() -> None:
    x = torch.randn(3, requires_grad=True)
    for name in ["CountMeanStats", "CountMeanVarianceStats"]:
        stats = _feed(getattr(streaming, name)(), [x * 2, x * 3])
        assert not stats.get()["mean"].requires_grad


def test_stats_of_dict_equals_pyro_with_types_and_default() -> None:
    samples = [{"a": torch.randn(2), "b": torch.randn(()), "c": torch.randn(3)} for _ in range(5)]
    types: dict[Hashable, Callable[[], streaming.StreamingStats]] = {
        "a": streaming.CountMeanVarianceStats,
        "b": streaming.StackStats,
    }
    pyro_types = {"a": pyro_streaming.CountMeanVarianceStats, "b": pyro_streaming.StackStats}
    for default, pyro_default in [
        (streaming.CountStats, pyro_streaming.CountStats),
        (streaming.CountMeanStats, pyro_streaming.CountMeanStats),
    ]:
        ours = _feed(streaming.StatsOfDict(types, default=default), samples)
        theirs = _feed(pyro_streaming.StatsOfDict(pyro_types, default=pyro_default), samples)
        _assert_same_summary(ours.get(), theirs.get())


def test_stats_of_dict_nests_and_merges_keys_seen_by_either_side() -> None:
    def factory() -> streaming.StreamingStats:
        return streaming.StatsOfDict(default=streaming.CountMeanStats)

    left = _feed(streaming.StatsOfDict(default=factory), [{"x": {"u": torch.tensor(1.0)}}])
    right = _feed(
        streaming.StatsOfDict(default=factory),
        [{"x": {"u": torch.tensor(3.0)}, "y": {"v": torch.tensor(5.0)}}, {"x": {"u": torch.tensor(5.0)}}],
    )
    merged = left.merge(right).get()
    assert merged == {"x": {"u": {"count": 3, "mean": torch.tensor(3.0)}}, "y": {"v": {"count": 1, "mean": torch.tensor(5.0)}}}
    assert left.get() == {"x": {"u": {"count": 1, "mean": torch.tensor(1.0)}}}


def test_streaming_stats_is_abstract() -> None:
    with pytest.raises(TypeError):
        streaming.StreamingStats()  # type: ignore[abstract]  # the point of the test


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.StackStats().update(1.0), AssertionError, "StackStats.update expects a torch.Tensor.*float"),
        (lambda m: m.CountMeanStats().update([1.0]), AssertionError, "torch.Tensor sample, got list"),
        (
            lambda m: _feed(m.CountMeanVarianceStats(), [torch.zeros(2), torch.zeros(3)]),
            AssertionError,
            r"sample shape \(3,\) differs from the first sample's \(2,\)",
        ),
        (lambda m: _feed(m.CountMeanVarianceStats(), [torch.zeros(2)]).get(), RuntimeError, "Insufficient samples"),
        (lambda m: m.CountStats().merge(m.CountMeanStats()), AssertionError, "cannot merge CountStats with CountMeanStats"),
        (lambda m: m.StatsOfDict().merge(m.StackStats()), AssertionError, "cannot merge StatsOfDict with StackStats"),
    ],
)
def test_bad_input_raises_pyros_error_type(call: Callable[[Any], object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(streaming)
    with pytest.raises(error):
        call(pyro_streaming)

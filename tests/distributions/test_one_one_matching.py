"""Tests for OneOneMatching (one_one_matching.py)."""

from __future__ import annotations

import importlib
import math
import warnings
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions.one_one_matching import maximum_weight_matching
from tests.distributions._matching_checks import (
    assert_enumeration_matches_pyro,
    assert_mode_is_the_most_likely,
    assert_samples_pass_a_chi_square_test,
)

pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize("size", [2, 3, 4])
def test_log_prob_and_enumeration_match_pyro(size: int) -> None:
    logits = torch.randn(size, size)
    ours, theirs = dist.OneOneMatching(logits), pyro_dist.OneOneMatching(logits)
    assert_enumeration_matches_pyro(ours, theirs, math.factorial(size))


@pytest.mark.parametrize("size", [3, 5])
def test_bethe_partition_function_matches_pyro(size: int) -> None:
    logits = torch.randn(size, size)
    ours = dist.OneOneMatching(logits, bp_iters=20).log_partition_function
    theirs = pyro_dist.OneOneMatching(logits, bp_iters=20).log_partition_function
    exact = dist.OneOneMatching(logits).log_partition_function
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert float(ours) <= float(exact) + 1e-4  # the Bethe permanent is a lower bound


def test_mode_is_the_most_likely_matching() -> None:
    for _ in range(5):
        assert_mode_is_the_most_likely(dist.OneOneMatching(torch.randn(5, 5)))
    assert torch.equal(maximum_weight_matching(torch.eye(3)), torch.arange(3))


def test_samples_pass_a_chi_square_test() -> None:
    torch.manual_seed(0)
    assert_samples_pass_a_chi_square_test(dist.OneOneMatching(torch.randn(3, 3)))


def test_support_check_warns_with_the_reason() -> None:
    support = dist.OneOneMatching(torch.zeros(3, 3)).support
    with pytest.warns(UserWarning, match="not binary"):
        assert not support.check(torch.tensor([0, 0, 1]))
    with pytest.warns(UserWarning, match="out of bounds"):
        assert not support.check(torch.tensor([0, 1, 3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert support.check(torch.tensor([2, 0, 1]))


def test_bad_arguments() -> None:
    with pytest.raises(NotImplementedError, match="batching"):
        dist.OneOneMatching(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="square"):
        dist.OneOneMatching(torch.zeros(2, 3))
    with pytest.raises(NotImplementedError, match="bp_iters"):
        dist.OneOneMatching(torch.zeros(3, 3), bp_iters=3).sample()

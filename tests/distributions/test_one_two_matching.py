"""Tests for OneTwoMatching (one_two_matching.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist
from tests.distributions._matching_checks import (
    assert_enumeration_matches_pyro,
    assert_mode_is_the_most_likely,
    assert_samples_pass_a_chi_square_test,
)

pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize("destins", [1, 2, 3])
def test_log_prob_and_enumeration_match_pyro(destins: int) -> None:
    logits = torch.randn(2 * destins, destins)
    ours, theirs = dist.OneTwoMatching(logits), pyro_dist.OneTwoMatching(logits)
    assert_enumeration_matches_pyro(ours, theirs, math.factorial(2 * destins) // 2**destins)


def test_bethe_partition_function_matches_pyro() -> None:
    logits = torch.randn(8, 4)
    ours = dist.OneTwoMatching(logits, bp_iters=20).log_partition_function
    theirs = pyro_dist.OneTwoMatching(logits, bp_iters=20).log_partition_function
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_mode_is_the_most_likely_matching() -> None:
    for _ in range(5):
        assert_mode_is_the_most_likely(dist.OneTwoMatching(torch.randn(6, 3)))


def test_samples_pass_a_chi_square_test() -> None:
    torch.manual_seed(0)
    assert_samples_pass_a_chi_square_test(dist.OneTwoMatching(torch.randn(4, 2)))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"\(2N, N\).*\(3, 2\)"):
        dist.OneTwoMatching(torch.zeros(3, 2))
    with pytest.raises(NotImplementedError, match="batching"):
        dist.OneTwoMatching(torch.zeros(2, 4, 2))
    with pytest.warns(UserWarning, match="not binary"):
        assert not dist.OneTwoMatching(torch.zeros(4, 2)).support.check(torch.tensor([0, 0, 0, 1]))

"""Tests for OneTwoMatching (one_two_matching.py)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

import ember.distributions as dist

pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize("destins", [1, 2, 3])
def test_log_prob_and_enumeration_match_pyro(destins: int) -> None:
    logits = torch.randn(2 * destins, destins)
    ours, theirs = dist.OneTwoMatching(logits), pyro_dist.OneTwoMatching(logits)
    support = ours.enumerate_support()
    assert torch.equal(support, theirs.enumerate_support())
    assert len(support) == math.factorial(2 * destins) // 2**destins
    assert torch.allclose(ours.log_prob(support), theirs.log_prob(support), atol=1e-5)
    assert abs(float(ours.log_prob(support).logsumexp(0))) < 1e-5


def test_bethe_partition_function_matches_pyro() -> None:
    logits = torch.randn(8, 4)
    ours = dist.OneTwoMatching(logits, bp_iters=20).log_partition_function
    theirs = pyro_dist.OneTwoMatching(logits, bp_iters=20).log_partition_function
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_mode_is_the_most_likely_matching() -> None:
    for _ in range(5):
        d = dist.OneTwoMatching(torch.randn(6, 3))
        support = d.enumerate_support()
        assert torch.equal(d.mode(), support[d.log_prob(support).argmax()])


def test_samples_pass_a_chi_square_test() -> None:
    torch.manual_seed(0)
    d = dist.OneTwoMatching(torch.randn(4, 2))
    support = d.enumerate_support()
    x = d.sample((3000,))
    counts = (x[:, None] == support[None]).all(-1).sum(0).double()
    expected = d.log_prob(support).exp().double() * 3000
    assert float(((counts - expected) ** 2 / expected).sum()) < 20.5  # chi2(5) at 99.9%
    assert d.support.check(x)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"\(2N, N\).*\(3, 2\)"):
        dist.OneTwoMatching(torch.zeros(3, 2))
    with pytest.raises(NotImplementedError, match="batching"):
        dist.OneTwoMatching(torch.zeros(2, 4, 2))
    with pytest.warns(UserWarning, match="not binary"):
        assert not dist.OneTwoMatching(torch.zeros(4, 2)).support.check(torch.tensor([0, 0, 0, 1]))

"""Checks shared by the matching distributions' tests: parity with pyro-ppl, mode, sampling."""

from __future__ import annotations

from typing import Any

import torch


def assert_enumeration_matches_pyro(ours: Any, theirs: Any, count: int) -> None:
    """The same ``count`` supported values and log densities as pyro-ppl's, normalized to 1."""
    support = ours.enumerate_support()
    assert torch.equal(support, theirs.enumerate_support())
    assert len(support) == count
    assert torch.allclose(ours.log_prob(support), theirs.log_prob(support), atol=1e-5)
    assert abs(float(ours.log_prob(support).logsumexp(0))) < 1e-5


def assert_mode_is_the_most_likely(d: Any) -> None:
    """``mode()`` is the supported value of highest log density (by brute force)."""
    support = d.enumerate_support()
    assert torch.equal(d.mode(), support[d.log_prob(support).argmax()])


def assert_samples_pass_a_chi_square_test(d: Any) -> None:
    """3000 draws (seed set by the caller), over a support of 6 values, fit the exact probabilities."""
    support = d.enumerate_support()
    assert len(support) == 6
    x = d.sample((3000,))
    counts = (x[:, None] == support[None]).all(-1).sum(0).double()
    expected = d.log_prob(support).exp().double() * 3000
    assert float(((counts - expected) ** 2 / expected).sum()) < 20.5  # chi2(5) at 99.9%
    assert d.support.check(x)

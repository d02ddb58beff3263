"""Welford covariance estimates against direct computation and pyro-ppl."""

from __future__ import annotations

from typing import Any

import pyro.ops.welford as pyro_welford
import torch

from ember.ops.welford import WelfordArrowheadCovariance, WelfordCovariance

PyroWelford: Any = pyro_welford.WelfordCovariance  # pyro is untyped
PyroArrowhead: Any = pyro_welford.WelfordArrowheadCovariance


def test_dense_and_diagonal_equal_torch_cov_and_pyro() -> None:
    x = torch.randn(50, 4, dtype=torch.float64) @ torch.randn(4, 4, dtype=torch.float64)
    for diagonal in (True, False):
        mine, theirs = WelfordCovariance(diagonal), PyroWelford(diagonal)
        for row in x:
            mine.update(row)
            theirs.update(row)
        expected = torch.cov(x.T)
        raw = mine.get_covariance(regularize=False)
        assert torch.allclose(raw, expected.diagonal() if diagonal else expected)
        assert torch.allclose(mine.get_covariance(), theirs.get_covariance())


def test_batched_rows_are_independent_estimates() -> None:
    x = torch.randn(30, 3, 2, dtype=torch.float64)
    w = WelfordCovariance(diagonal=False)
    for row in x:
        w.update(row)
    for c in range(3):
        assert torch.allclose(w.get_covariance(regularize=False)[c], torch.cov(x[:, c].T))


def test_arrowhead_equals_pyro() -> None:
    x = torch.randn(40, 5, dtype=torch.float64)
    mine, theirs = WelfordArrowheadCovariance(2), PyroArrowhead(2)
    for row in x:
        mine.update(row)
        theirs.update(row)
    for regularize in (False, True):
        top, bottom = mine.get_covariance(regularize)
        expected_top, expected_bottom = theirs.get_covariance(regularize)
        assert torch.allclose(top, expected_top) and torch.allclose(bottom, expected_bottom)

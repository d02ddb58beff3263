"""Tests for ember.distributions.score_parts.ScoreParts."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

from ember.distributions import ScoreParts

# Pyro is an unannotated test oracle.
pyro_score_parts: Any = importlib.import_module("pyro.distributions.score_parts")


def test_score_parts_is_a_named_triple() -> None:
    lp = torch.tensor([-1.0])
    parts = ScoreParts(lp, lp, 0)
    assert parts.log_prob is lp and parts.score_function is lp and parts.entropy_term == 0
    log_prob, score_function, entropy_term = parts
    assert (log_prob, score_function, entropy_term) == (lp, lp, 0)


def test_scale_and_mask_scales_log_prob_and_entropy_but_not_score_function() -> None:
    lp = torch.tensor([-1.0, -2.0])
    entropy = torch.tensor([0.5, 0.25])
    parts = ScoreParts(lp, lp, entropy).scale_and_mask(3.0)
    assert torch.equal(parts.log_prob, torch.tensor([-3.0, -6.0]))
    assert parts.score_function is lp
    assert isinstance(parts.entropy_term, torch.Tensor)
    assert torch.equal(parts.entropy_term, torch.tensor([1.5, 0.75]))


def test_scale_and_mask_masks_with_where_and_leaves_zero_terms() -> None:
    lp = torch.tensor([-1.0, float("nan")])
    mask = torch.tensor([True, False])
    parts = ScoreParts(lp, lp, 0).scale_and_mask(2.0, mask)
    assert torch.equal(parts.log_prob, torch.tensor([-2.0, 0.0]))
    assert parts.score_function is lp  # not masked, as in Pyro
    assert parts.entropy_term == 0


def test_scale_and_mask_no_op_returns_same_tensors() -> None:
    lp = torch.tensor([-1.0])
    parts = ScoreParts(lp, 0, lp).scale_and_mask()
    assert parts.log_prob is lp and parts.entropy_term is lp


@pytest.mark.parametrize(
    ("scale", "mask"),
    [(1.0, None), (2.0, None), (0.5, True), (2.0, False), (3.0, torch.tensor([False, True, True]))],
)
def test_scale_and_mask_matches_pyro(scale: float, mask: torch.Tensor | bool | None) -> None:
    torch.manual_seed(0)
    lp, entropy = torch.randn(3), torch.randn(3)
    ours = ScoreParts(lp, lp, entropy).scale_and_mask(scale, mask)
    theirs = pyro_score_parts.ScoreParts(lp, lp, entropy).scale_and_mask(scale, mask)
    for mine, pyros in zip(ours, theirs):
        assert torch.equal(torch.as_tensor(mine), torch.as_tensor(pyros))

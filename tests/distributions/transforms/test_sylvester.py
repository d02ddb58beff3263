"""Tests for ember.distributions.transforms.sylvester."""

from __future__ import annotations

import torch

from ember.distributions.transforms import Sylvester, sylvester
from tests.distributions.transforms._checks import (
    assert_cached_inverse_is_identity,
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_same_declarations,
    pyro_transforms,
)


def test_matches_pyro_near_the_identity() -> None:
    ours, theirs = Sylvester(3, count_transforms=2), pyro_transforms.Sylvester(3, count_transforms=2)
    x = torch.randn(5, 3)
    # Pyro's closed-form log-Jacobian is exact only to first order in its small initial weights.
    assert_pyro_parity(ours, theirs, x, invertible=False, atol=1e-4)
    assert_same_declarations(ours, theirs)
    assert_cached_inverse_is_identity(ours, x)


def test_outputs_match_pyro_away_from_the_identity() -> None:
    ours, theirs = Sylvester(3), pyro_transforms.Sylvester(3)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.8, 0.8)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(5, 3)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_log_det_against_autograd_for_larger_weights() -> None:
    flow = sylvester(3).double()
    with torch.no_grad():
        for p in (flow.R_dense, flow.S_dense, flow.R_diag, flow.S_diag, flow.b):
            p.uniform_(-0.8, 0.8)
    assert_log_det_matches_autograd(flow, torch.randn(4, 3, dtype=torch.float64), atol=1e-9)

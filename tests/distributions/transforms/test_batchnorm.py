"""Tests for ember.distributions.transforms.batchnorm."""

from __future__ import annotations

import torch

from ember.distributions.transforms import BatchNorm, batchnorm
from tests.distributions.transforms._checks import (
    assert_log_det_matches_autograd,
    assert_pyro_parity,
    assert_round_trip,
    assert_same_declarations,
    pyro_transforms,
)


def test_eval_mode_matches_pyro_and_round_trips() -> None:
    ours, theirs = BatchNorm(3), pyro_transforms.BatchNorm(3)
    with torch.no_grad():
        theirs.gamma.uniform_(0.5, 2.0)
        theirs.beta.normal_()
        theirs.moving_mean.normal_()
        theirs.moving_variance.uniform_(0.5, 2.0)
    ours.eval(), theirs.eval()
    x = torch.randn(5, 3)
    assert_pyro_parity(ours, theirs, x, atol=1e-5)
    assert_same_declarations(ours, theirs)
    ours.double()
    assert_round_trip(ours, x.double(), atol=1e-9)
    assert_log_det_matches_autograd(ours, x.double(), atol=1e-9)


def test_training_inverse_normalises_the_batch_and_updates_moving_averages_as_pyro() -> None:
    ours, theirs = batchnorm(2, momentum=0.5), pyro_transforms.batchnorm(2, momentum=0.5)
    y = torch.randn(50, 2) * 3 + 1
    x_ours, x_theirs = ours.inv(y), theirs.inv(y)
    assert torch.allclose(x_ours, x_theirs)
    assert torch.allclose(x_ours.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(ours.moving_mean, theirs.moving_mean) and torch.allclose(ours.moving_variance, theirs.moving_variance)
    assert torch.allclose(ours.log_abs_det_jacobian(x_ours, y), theirs.log_abs_det_jacobian(x_theirs, y))

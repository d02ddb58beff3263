"""ClippedAdam and AdagradRMSProp: the update rules, checked by hand and against pyro-ppl."""

from __future__ import annotations

import math
from typing import Any

import pyro.optim.adagrad_rmsprop
import pyro.optim.clipped_adam
import pytest
import torch

from ember.optim.adagrad_rmsprop import AdagradRMSProp
from ember.optim.clipped_adam import ClippedAdam


def _trajectory(cls: Any, steps: int = 5, **kwargs: Any) -> tuple[torch.Tensor, list[float]]:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    optimizer = cls([p], **kwargs)
    lrs = []
    for step in range(steps):
        p.grad = torch.tensor([30.0, -0.5, 2.0]) * (-1) ** step + p.detach()
        optimizer.step()
        lrs.append(optimizer.param_groups[0].get("lr", 0.0))
    return p.detach(), lrs


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 0.1, "clip_norm": 1.0},
        {"lr": 0.1, "lrd": 0.5},
        {"lr": 0.05, "weight_decay": 0.1, "betas": (0.8, 0.99)},
        {"lr": 0.05, "centered_variance": True},
    ],
)
def test_clipped_adam_matches_pyro(kwargs: dict[str, Any]) -> None:
    ours, our_lrs = _trajectory(ClippedAdam, **kwargs)
    theirs, their_lrs = _trajectory(pyro.optim.clipped_adam.ClippedAdam, **kwargs)
    torch.testing.assert_close(ours, theirs)
    assert our_lrs == pytest.approx(their_lrs)


def test_clipped_adam_first_step_moves_by_lr_after_clamping_and_decay() -> None:
    p = torch.nn.Parameter(torch.tensor([0.0, 0.0]))
    optimizer = ClippedAdam([p], lr=0.1, clip_norm=2.0, lrd=0.5)
    p.grad = torch.tensor([100.0, -1.0])
    optimizer.step()
    # The first Adam step moves each coordinate by lr * sign(grad) (up to eps); lr was halved.
    torch.testing.assert_close(p.detach(), torch.tensor([-0.05, 0.05]))
    torch.testing.assert_close(p.grad, torch.tensor([2.0, -1.0]), msg="the gradient is clamped in place")
    assert optimizer.param_groups[0]["lr"] == 0.05


def test_clipped_adam_closure_result_is_returned() -> None:
    p = torch.nn.Parameter(torch.tensor([0.0]))
    p.grad = torch.tensor([1.0])
    assert ClippedAdam([p]).step(lambda: 3.0) == 3.0


@pytest.mark.parametrize("kwargs", [{}, {"eta": 0.3, "t": 0.5}, {"delta": 0.1}])
def test_adagrad_rmsprop_matches_pyro(kwargs: dict[str, Any]) -> None:
    ours, _ = _trajectory(AdagradRMSProp, **kwargs)
    theirs, _ = _trajectory(pyro.optim.adagrad_rmsprop.AdagradRMSProp, **kwargs)
    torch.testing.assert_close(ours, theirs)


def test_adagrad_rmsprop_second_step_by_hand() -> None:
    p = torch.nn.Parameter(torch.tensor([0.0]))
    optimizer = AdagradRMSProp([p], eta=1.0, delta=0.0, t=0.5)
    p.grad = torch.tensor([2.0])
    optimizer.step()  # sum = 4, lr = 1: p = -2 / (1 + 2)
    p.grad = torch.tensor([2.0])
    optimizer.step()  # sum = 0.5 * 4 + 0.5 * 4 = 4, lr = 2 ** -0.5
    expected = -2.0 / 3.0 - 2 ** -0.5 * 2.0 / 3.0
    assert p.item() == pytest.approx(expected)


def test_adagrad_rmsprop_rejects_sparse_gradients() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(NotImplementedError, match="sparse"):
        AdagradRMSProp([p]).step()
    assert math.isfinite(p.sum().item())

"""Tests for ember.distributions.transforms.utils."""

from __future__ import annotations

import torch

from ember.distributions.transforms.utils import clamp_preserve_gradients


def test_clamp_preserve_gradients_clamps_values_and_passes_gradients() -> None:
    x = torch.tensor([-3.0, 0.0, 3.0], requires_grad=True)
    y = clamp_preserve_gradients(x, -1.0, 2.0)
    torch.autograd.backward((y * torch.tensor([1.0, 2.0, 3.0])).sum())
    assert torch.equal(y.detach(), torch.tensor([-1.0, 0.0, 2.0]))
    assert x.grad is not None and torch.equal(x.grad, torch.tensor([1.0, 2.0, 3.0]))

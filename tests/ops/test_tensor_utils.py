"""Tests for ember.ops.tensor_utils."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

from ember.ops.tensor_utils import safe_normalize

pyro_tensor_utils: Any = importlib.import_module("pyro.ops.tensor_utils")


def test_safe_normalize_matches_pyro_including_zero_vectors() -> None:
    x = torch.randn(5, 3)
    x[2] = 0
    assert torch.equal(safe_normalize(x), pyro_tensor_utils.safe_normalize(x))
    assert torch.equal(safe_normalize(x)[2], torch.tensor([1.0, 0.0, 0.0]))


def test_safe_normalize_other_norms_and_gradients() -> None:
    x = torch.tensor([3.0, -4.0], requires_grad=True)
    assert torch.allclose(safe_normalize(x, p=1), torch.tensor([3.0, -4.0]) / 7)
    (grad,) = torch.autograd.grad(safe_normalize(x)[0], [x])
    assert torch.isfinite(grad).all()
    with pytest.raises(ValueError, match="p >= 0"):
        safe_normalize(x, p=-1)

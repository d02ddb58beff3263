"""Dual averaging against pyro-ppl on the same gradient sequence."""

from __future__ import annotations

from typing import Any

import pyro.ops.dual_averaging as pyro_dual_averaging
import torch

from ember.ops.dual_averaging import DualAveraging

PyroDualAveraging: Any = pyro_dual_averaging.DualAveraging  # pyro is untyped


def test_iterates_equal_pyro_and_batch_entries_are_independent() -> None:
    grads = torch.randn(40, dtype=torch.float64)
    mine, theirs = DualAveraging(prox_center=1.5), PyroDualAveraging(prox_center=1.5)
    batched = DualAveraging(prox_center=torch.tensor([1.5, 1.5], dtype=torch.float64))
    for g in grads:
        mine.step(float(g))
        theirs.step(float(g))
        batched.step(torch.stack([g, -g]))
        assert mine.get_state() == theirs.get_state()
    x, x_avg = batched.get_state()
    assert torch.allclose(torch.as_tensor(x)[0], torch.tensor(mine.get_state()[0], dtype=torch.float64))
    assert torch.allclose(torch.as_tensor(x_avg)[0], torch.tensor(mine.get_state()[1], dtype=torch.float64))

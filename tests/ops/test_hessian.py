"""hessian against torch.autograd.functional.hessian and pyro.ops.hessian."""

from __future__ import annotations

from typing import Any

import pyro.ops.hessian as _pyro_hessian
import torch

from ember.ops.hessian import hessian

pyro_hessian: Any = _pyro_hessian  # pyro-ppl is untyped: the oracle's calls are unchecked


def _f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.sin() * y[0]).sum() + (x[:, None] * y[None]).pow(2).sum() + y.prod().exp()


def test_hessian_of_several_inputs_equals_autograds_functional_hessian() -> None:
    x = torch.randn(2, requires_grad=True, dtype=torch.float64)
    y = torch.randn(3, requires_grad=True, dtype=torch.float64)
    H = hessian(_f(x, y), [x, y])
    blocks: Any = torch.autograd.functional.hessian(_f, (x, y))  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    expected = torch.cat([torch.cat([blocks[i][j].reshape(x.numel() if i == 0 else 3, -1) for j in range(2)], 1) for i in range(2)])
    assert H.shape == (5, 5)
    assert torch.allclose(H, expected, atol=1e-10)
    assert torch.allclose(H, pyro_hessian.hessian(_f(x, y), [x, y]), atol=1e-10)


def test_hessian_is_zero_where_an_input_enters_linearly() -> None:
    x = torch.randn(2, requires_grad=True)
    y = torch.randn(1, requires_grad=True)
    H = hessian((x**2).sum() + 3 * y.sum(), [x, y])
    assert torch.allclose(H, torch.diag(torch.tensor([2.0, 2.0, 0.0])))

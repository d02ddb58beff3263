"""Arrowhead matrix algebra against dense linear algebra and pyro-ppl."""

from __future__ import annotations

from typing import Any

import pyro.ops.arrowhead
import torch

from ember.ops.arrowhead import SymmArrowhead, TriuArrowhead, sqrt, triu_gram, triu_inverse, triu_matvecmul

pyro_arrowhead: Any = pyro.ops.arrowhead  # pyro is untyped


def _dense_symmetric(x: SymmArrowhead) -> torch.Tensor:
    k, n = x.top.shape
    out = torch.diag(torch.cat([torch.zeros(k, dtype=x.top.dtype), x.bottom_diag]))
    out[:k] = x.top
    out[:, :k] = x.top.T
    return out


def _dense_triu(x: TriuArrowhead) -> torch.Tensor:
    k, n = x.top.shape
    out = torch.diag(torch.cat([torch.zeros(k, dtype=x.top.dtype), x.bottom_diag]))
    out[:k] = x.top
    return out


def _example(k: int = 2, n: int = 6) -> SymmArrowhead:
    a = torch.randn(n, n, dtype=torch.float64)
    dense = a @ a.T + n * torch.eye(n, dtype=torch.float64)
    return SymmArrowhead(dense[:k], dense.diagonal()[k:].clone())


def test_sqrt_is_an_upper_triangular_square_root_equal_to_pyro() -> None:
    x = _example()
    root = sqrt(x)
    u = _dense_triu(root)
    assert torch.allclose(u, u.triu())
    assert torch.allclose(u @ u.T, _dense_symmetric(x))
    theirs = pyro_arrowhead.sqrt(pyro_arrowhead.SymmArrowhead(x.top, x.bottom_diag))
    assert torch.allclose(root.top, theirs.top) and torch.allclose(root.bottom_diag, theirs.bottom_diag)


def test_inverse_matvec_and_gram_match_dense_algebra() -> None:
    root = sqrt(_example())
    u = _dense_triu(root)
    inverse = triu_inverse(root)
    assert torch.allclose(_dense_triu(inverse), torch.linalg.inv(u))
    y = torch.randn(6, dtype=torch.float64)
    assert torch.allclose(triu_matvecmul(root, y), u @ y)
    assert torch.allclose(triu_matvecmul(root, y, transpose=True), u.T @ y)
    assert torch.allclose(triu_gram(root), u.T @ u)


def test_no_head_is_diagonal() -> None:
    x = SymmArrowhead(torch.zeros(0, 3), torch.tensor([4.0, 9.0, 1.0]))
    root = sqrt(x)
    assert torch.equal(root.bottom_diag, torch.tensor([2.0, 3.0, 1.0]))
    assert torch.equal(triu_gram(root), torch.tensor([4.0, 9.0, 1.0]))

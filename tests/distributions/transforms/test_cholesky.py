"""Tests for ember.distributions.transforms.cholesky."""

from __future__ import annotations

import pytest
import torch

from ember.distributions.transforms import (
    CholeskyTransform,
    CorrCholeskyTransform,
    CorrLCholeskyTransform,
    CorrMatrixCholeskyTransform,
)
from tests.distributions.transforms._checks import assert_pyro_parity, assert_same_declarations, jacobian_of, pyro_transforms


def _spd(size: int) -> torch.Tensor:
    a = torch.randn(size, size, dtype=torch.float64)
    return a @ a.T + size * torch.eye(size, dtype=torch.float64)


def test_cholesky_matches_pyro_and_the_lower_triangle_jacobian() -> None:
    ours, theirs = CholeskyTransform(), pyro_transforms.CholeskyTransform()
    x = _spd(3)
    assert_pyro_parity(ours, theirs, x)
    assert_same_declarations(ours, theirs)
    rows, cols = torch.tril_indices(3, 3)

    def lower_to_lower(v: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(3, 3, dtype=v.dtype)
        full[rows, cols] = v
        full = full + full.tril(-1).T
        factor: torch.Tensor = ours(full)
        return factor[rows, cols]

    jac = jacobian_of(lower_to_lower, x[rows, cols])
    assert torch.allclose(ours.log_abs_det_jacobian(x, ours(x)), torch.linalg.slogdet(jac)[1])


def test_corr_matrix_cholesky_matches_pyro() -> None:
    x = CorrCholeskyTransform()(torch.randn(2, 3, dtype=torch.float64))
    corr = x @ x.mT
    assert_pyro_parity(CorrMatrixCholeskyTransform(), pyro_transforms.CorrMatrixCholeskyTransform(), corr)


def test_corr_l_cholesky_is_deprecated_torch_corr_cholesky() -> None:
    with pytest.warns(FutureWarning, match="CorrLCholeskyTransform is deprecated in favor of CorrCholeskyTransform"):
        t = CorrLCholeskyTransform()
    x = torch.randn(3)
    assert torch.equal(t(x), CorrCholeskyTransform()(x))

"""Constraints: torch's, plus the extra ones Pyro provides.

Every name in :mod:`torch.distributions.constraints` is re-exported unchanged. The extras are
built on torch's :class:`~torch.distributions.constraints.Constraint`;
:mod:`ember.distributions.transforms` registers ``biject_to`` / ``transform_to`` for them.

>>> sphere.check(torch.tensor([0.6, 0.8])), ordered_vector.check(torch.tensor([2.0, 1.0]))
(tensor(True), tensor(False))
"""

from __future__ import annotations

import torch
from torch.distributions.constraints import Constraint as Constraint
from torch.distributions.constraints import MixtureSameFamilyConstraint as MixtureSameFamilyConstraint
from torch.distributions.constraints import _GreaterThan, _LowerCholesky
from torch.distributions.constraints import boolean as boolean
from torch.distributions.constraints import cat as cat
from torch.distributions.constraints import corr_cholesky as corr_cholesky
from torch.distributions.constraints import dependent as dependent
from torch.distributions.constraints import dependent_property as dependent_property
from torch.distributions.constraints import greater_than as greater_than
from torch.distributions.constraints import greater_than_eq as greater_than_eq
from torch.distributions.constraints import half_open_interval as half_open_interval
from torch.distributions.constraints import independent as independent
from torch.distributions.constraints import integer_interval as integer_interval
from torch.distributions.constraints import interval as interval
from torch.distributions.constraints import is_dependent as is_dependent
from torch.distributions.constraints import less_than as less_than
from torch.distributions.constraints import lower_cholesky as lower_cholesky
from torch.distributions.constraints import lower_triangular as lower_triangular
from torch.distributions.constraints import multinomial as multinomial
from torch.distributions.constraints import nonnegative as nonnegative
from torch.distributions.constraints import nonnegative_integer as nonnegative_integer
from torch.distributions.constraints import one_hot as one_hot
from torch.distributions.constraints import positive as positive
from torch.distributions.constraints import positive_definite as positive_definite
from torch.distributions.constraints import positive_integer as positive_integer
from torch.distributions.constraints import positive_semidefinite as positive_semidefinite
from torch.distributions.constraints import real as real
from torch.distributions.constraints import real_vector as real_vector
from torch.distributions.constraints import simplex as simplex
from torch.distributions.constraints import square as square
from torch.distributions.constraints import stack as stack
from torch.distributions.constraints import symmetric as symmetric
from torch.distributions.constraints import unit_interval as unit_interval

__all__ = [
    "Constraint",
    "MixtureSameFamilyConstraint",
    "boolean",
    "cat",
    "corr_cholesky",
    "corr_cholesky_constraint",
    "corr_matrix",
    "dependent",
    "dependent_property",
    "greater_than",
    "greater_than_eq",
    "half_open_interval",
    "independent",
    "integer",
    "integer_interval",
    "interval",
    "is_dependent",
    "less_than",
    "lower_cholesky",
    "lower_triangular",
    "multinomial",
    "nonnegative",
    "nonnegative_integer",
    "one_hot",
    "ordered_vector",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_ordered_vector",
    "positive_semidefinite",
    "real",
    "real_vector",
    "simplex",
    "softplus_lower_cholesky",
    "softplus_positive",
    "sphere",
    "square",
    "stack",
    "symmetric",
    "unit_interval",
    "unit_lower_cholesky",
]


class _Integer(Constraint):
    """Integer-valued reals."""

    is_discrete = True

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return value % 1 == 0

    def __repr__(self) -> str:
        return "Integer()"


class _OrderedVector(Constraint):
    """Real vectors whose elements strictly increase along the last dimension."""

    event_dim = 1

    def check(self, value: torch.Tensor) -> torch.Tensor:
        if value.dim() == 0:
            return torch.tensor(False, device=value.device)
        return (value[..., 1:] > value[..., :-1]).all(-1)

    def __repr__(self) -> str:
        return "OrderedVector()"


class _PositiveOrderedVector(_OrderedVector):
    """Positive vectors whose elements strictly increase along the last dimension."""

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return super().check(value) & (value > 0).all(-1)

    def __repr__(self) -> str:
        return "PositiveOrderedVector()"


class _Sphere(Constraint):
    """Vectors of Euclidean norm 1, up to a tolerance that grows with the dimension."""

    event_dim = 1
    reltol = 10.0  # relative to the dtype's machine epsilon

    def check(self, value: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(value.dtype).eps
        error: torch.Tensor = (torch.linalg.vector_norm(value, dim=-1) - 1).abs()
        return error.lt(self.reltol * eps * value.size(-1) ** 0.5)

    def __repr__(self) -> str:
        return "Sphere()"


class _CorrMatrix(Constraint):
    """Correlation matrices: symmetric positive definite with unit diagonal."""

    event_dim = 2

    def check(self, value: torch.Tensor) -> torch.Tensor:
        unit_diagonal = (value.diagonal(dim1=-2, dim2=-1) - 1).abs().lt(1e-6).all(-1)
        # torch leaves the check unannotated
        result: torch.Tensor = positive_definite.check(value)  # type: ignore[no-untyped-call]
        return result & unit_diagonal

    def __repr__(self) -> str:
        return "CorrMatrix()"


class _UnitLowerCholesky(Constraint):
    """Lower-triangular square matrices with ones on the diagonal."""

    event_dim = 2

    def check(self, value: torch.Tensor) -> torch.Tensor:
        lower = (value.tril() == value).flatten(-2).all(-1)
        unit_diagonal = (value.diagonal(dim1=-2, dim2=-1) == 1).all(-1)
        return lower & unit_diagonal

    def __repr__(self) -> str:
        return "UnitLowerCholesky()"


class _SoftplusPositive(_GreaterThan):
    """Positive reals, mapped to by a softplus rather than an exp transform."""

    def __init__(self) -> None:
        super().__init__(lower_bound=0.0)  # type: ignore[no-untyped-call]  # torch: unannotated


class _SoftplusLowerCholesky(_LowerCholesky):
    """Lower Cholesky factors, mapped to with a softplus on the diagonal."""


integer = _Integer()
ordered_vector = _OrderedVector()
positive_ordered_vector = _PositiveOrderedVector()
sphere = _Sphere()
corr_matrix = _CorrMatrix()
unit_lower_cholesky = _UnitLowerCholesky()
softplus_positive = _SoftplusPositive()
softplus_lower_cholesky = _SoftplusLowerCholesky()
# Pyro's deprecated name for ``corr_cholesky``, kept so old models import unchanged.
corr_cholesky_constraint = corr_cholesky

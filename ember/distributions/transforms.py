"""Transforms: torch's, plus those mapping onto Ember's extra constraints.

Every name in :mod:`torch.distributions.transforms` is re-exported unchanged. Importing this
module registers :func:`~torch.distributions.biject_to` and
:func:`~torch.distributions.transform_to` for the constraints that
:mod:`ember.distributions.constraints` adds to torch's.

>>> OrderedTransform()(torch.tensor([0.0, 0.0, 0.0]))
tensor([0., 1., 2.])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.distributions import biject_to, transform_to
from torch.distributions.constraint_registry import ConstraintRegistry
from torch.distributions.transforms import AbsTransform as AbsTransform
from torch.distributions.transforms import AffineTransform as AffineTransform
from torch.distributions.transforms import CatTransform as CatTransform
from torch.distributions.transforms import ComposeTransform as ComposeTransform
from torch.distributions.transforms import CorrCholeskyTransform as CorrCholeskyTransform
from torch.distributions.transforms import (
    CumulativeDistributionTransform as CumulativeDistributionTransform,
)
from torch.distributions.transforms import ExpTransform as ExpTransform
from torch.distributions.transforms import IndependentTransform as IndependentTransform
from torch.distributions.transforms import LowerCholeskyTransform as LowerCholeskyTransform
from torch.distributions.transforms import PositiveDefiniteTransform as PositiveDefiniteTransform
from torch.distributions.transforms import PowerTransform as PowerTransform
from torch.distributions.transforms import ReshapeTransform as ReshapeTransform
from torch.distributions.transforms import SigmoidTransform as SigmoidTransform
from torch.distributions.transforms import SoftmaxTransform as SoftmaxTransform
from torch.distributions.transforms import SoftplusTransform as SoftplusTransform
from torch.distributions.transforms import StackTransform as StackTransform
from torch.distributions.transforms import StickBreakingTransform as StickBreakingTransform
from torch.distributions.transforms import TanhTransform as TanhTransform
from torch.distributions.transforms import Transform as Transform
from torch.distributions.transforms import identity_transform as identity_transform

from ember.distributions import constraints

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "CatTransform",
    "ComposeTransform",
    "CorrCholeskyTransform",
    "CorrMatrixCholeskyTransform",
    "CumulativeDistributionTransform",
    "ExpTransform",
    "IndependentTransform",
    "LowerCholeskyTransform",
    "Normalize",
    "OrderedTransform",
    "PositiveDefiniteTransform",
    "PowerTransform",
    "ReshapeTransform",
    "SigmoidTransform",
    "SoftmaxTransform",
    "SoftplusLowerCholeskyTransform",
    "SoftplusTransform",
    "StackTransform",
    "StickBreakingTransform",
    "TanhTransform",
    "Transform",
    "UnitLowerCholeskyTransform",
    "identity_transform",
]


# torch leaves the constraint's __init__ unannotated
_SQUARE_MATRICES = constraints.independent(constraints.real, 2)  # type: ignore[no-untyped-call]


class _StatelessTransform(Transform):
    """A transform without parameters: all instances are equal."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class OrderedTransform(_StatelessTransform):
    """Map a real vector to an increasing one: ``y[0] = x[0]``, ``y[i] = y[i-1] + exp(x[i])``."""

    domain = constraints.real_vector
    codomain = constraints.ordered_vector
    bijective = True
    sign = +1

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :1], x[..., 1:].exp()], dim=-1).cumsum(-1)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([y[..., :1], (y[..., 1:] - y[..., :-1]).log()], dim=-1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x[..., 1:].sum(-1)


class CorrMatrixCholeskyTransform(_StatelessTransform):
    """Map a correlation matrix to its Cholesky factor.

    The Jacobian is taken with respect to the strictly lower-triangular entries, as for
    :class:`~torch.distributions.transforms.CorrCholeskyTransform`.

    >>> t = CorrMatrixCholeskyTransform()
    >>> t.inv(t(torch.tensor([[1.0, 0.5], [0.5, 1.0]])))
    tensor([[1.0000, 0.5000],
            [0.5000, 1.0000]])
    """

    domain = constraints.corr_matrix
    codomain = constraints.corr_cholesky
    bijective = True

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        factor: torch.Tensor = torch.linalg.cholesky(x)
        return factor

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.matmul(y, y.mT)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        size = y.size(-1)
        # log |d corr / d chol| = sum_i (size - 1 - i) log L_ii; this is the inverse direction.
        powers = torch.arange(size - 1, -1, -1, dtype=y.dtype, device=y.device)
        return -(powers * y.diagonal(dim1=-2, dim2=-1).log()).sum(-1)


class SoftplusLowerCholeskyTransform(_StatelessTransform):
    """Map a square matrix to a lower Cholesky factor, with a softplus on the diagonal."""

    domain = _SQUARE_MATRICES
    codomain = constraints.softplus_lower_cholesky

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        diagonal = F.softplus(x.diagonal(dim1=-2, dim2=-1))
        return x.tril(-1) + diagonal.diag_embed()

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        diagonal = y.diagonal(dim1=-2, dim2=-1)
        return y.tril(-1) + (diagonal + torch.log(-torch.expm1(-diagonal))).diag_embed()


class UnitLowerCholeskyTransform(_StatelessTransform):
    """Map a square matrix to a lower-triangular one with ones on the diagonal."""

    domain = _SQUARE_MATRICES
    codomain = constraints.unit_lower_cholesky

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(x.size(-1), dtype=x.dtype, device=x.device)
        return x.tril(-1) + eye

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y.tril(-1)


class Normalize(_StatelessTransform):
    """Project a nonzero vector onto the unit sphere; the inverse is the identity."""

    domain = constraints.real_vector
    codomain = constraints.sphere

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        return torch.div(x, norm.clamp(min=torch.finfo(x.dtype).tiny))

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y


def _register(
    registry: ConstraintRegistry,
    constraint: constraints.Constraint,
    factory: Callable[[constraints.Constraint], Transform],
) -> None:
    registry.register(constraint, factory)  # type: ignore[no-untyped-call]  # torch: unannotated


def _positive_ordered(_: constraints.Constraint) -> Transform:
    return ComposeTransform([OrderedTransform(), ExpTransform()])


def _corr_matrix(_: constraints.Constraint) -> Transform:
    return ComposeTransform([CorrCholeskyTransform(), CorrMatrixCholeskyTransform().inv])


for _registry in (biject_to, transform_to):
    _register(_registry, constraints.ordered_vector, lambda _: OrderedTransform())
    _register(_registry, constraints.positive_ordered_vector, _positive_ordered)
    _register(_registry, constraints.softplus_positive, lambda _: SoftplusTransform())
    _register(_registry, constraints.corr_matrix, _corr_matrix)
# These are onto but not one-to-one, so only transform_to knows them.
_register(transform_to, constraints.softplus_lower_cholesky, lambda _: SoftplusLowerCholeskyTransform())
_register(transform_to, constraints.unit_lower_cholesky, lambda _: UnitLowerCholeskyTransform())
_register(transform_to, constraints.sphere, lambda _: Normalize())

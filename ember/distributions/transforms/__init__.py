"""Pyro's transforms: torch's, the bijections onto Ember's extra constraints, and the normalizing flows.

Every name in :mod:`torch.distributions.transforms` is re-exported unchanged. One module per
family holds the rest, at Pyro's module paths (``affine_autoregressive``, ``spline``, ...);
learnable flows are :class:`~ember.distributions.torch_transform.TransformModule` s and their
``Conditional*`` forms take a context. Lowercase helpers (``spline(3)``, ``planar(2)``, ...)
build a flow with its default network. Importing this package registers
:func:`~torch.distributions.biject_to` and :func:`~torch.distributions.transform_to` for the
constraints that :mod:`ember.distributions.constraints` adds to torch's.

>>> import torch
>>> OrderedTransform()(torch.tensor([0.0, 0.0, 0.0]))
tensor([0., 1., 2.])
>>> flow = iterated(2, planar, 3)
>>> flow(torch.zeros(5, 3)).shape
torch.Size([5, 3])
"""

from __future__ import annotations

from collections.abc import Callable

from torch.distributions import biject_to, transform_to
from torch.distributions.constraint_registry import ConstraintRegistry
from torch.distributions.transforms import AbsTransform as AbsTransform
from torch.distributions.transforms import AffineTransform as AffineTransform
from torch.distributions.transforms import CatTransform as CatTransform
from torch.distributions.transforms import ComposeTransform as ComposeTransform
from torch.distributions.transforms import CorrCholeskyTransform as CorrCholeskyTransform
from torch.distributions.transforms import CumulativeDistributionTransform as CumulativeDistributionTransform
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
from ember.distributions.torch_transform import ComposeTransformModule as ComposeTransformModule
from ember.distributions.torch_transform import iterated as iterated
from ember.distributions.transforms.affine_autoregressive import (
    AffineAutoregressive as AffineAutoregressive,
    ConditionalAffineAutoregressive as ConditionalAffineAutoregressive,
    affine_autoregressive as affine_autoregressive,
    conditional_affine_autoregressive as conditional_affine_autoregressive,
)
from ember.distributions.transforms.affine_coupling import (
    AffineCoupling as AffineCoupling,
    ConditionalAffineCoupling as ConditionalAffineCoupling,
    affine_coupling as affine_coupling,
    conditional_affine_coupling as conditional_affine_coupling,
)
from ember.distributions.transforms.basic import (
    ELUTransform as ELUTransform,
    LeakyReLUTransform as LeakyReLUTransform,
    elu as elu,
    leaky_relu as leaky_relu,
)
from ember.distributions.transforms.batchnorm import (
    BatchNorm as BatchNorm,
    batchnorm as batchnorm,
)
from ember.distributions.transforms.block_autoregressive import (
    BlockAutoregressive as BlockAutoregressive,
    MaskedBlockLinear as MaskedBlockLinear,
    block_autoregressive as block_autoregressive,
    log_matrix_product as log_matrix_product,
)
from ember.distributions.transforms.cholesky import (
    CholeskyTransform as CholeskyTransform,
    CorrLCholeskyTransform as CorrLCholeskyTransform,
    CorrMatrixCholeskyTransform as CorrMatrixCholeskyTransform,
)
from ember.distributions.transforms.discrete_cosine import (
    DiscreteCosineTransform as DiscreteCosineTransform,
)
from ember.distributions.transforms.generalized_channel_permute import (
    ConditionalGeneralizedChannelPermute as ConditionalGeneralizedChannelPermute,
    ConditionedGeneralizedChannelPermute as ConditionedGeneralizedChannelPermute,
    GeneralizedChannelPermute as GeneralizedChannelPermute,
    conditional_generalized_channel_permute as conditional_generalized_channel_permute,
    generalized_channel_permute as generalized_channel_permute,
)
from ember.distributions.transforms.haar import (
    HaarTransform as HaarTransform,
)
from ember.distributions.transforms.householder import (
    ConditionalHouseholder as ConditionalHouseholder,
    ConditionedHouseholder as ConditionedHouseholder,
    Householder as Householder,
    conditional_householder as conditional_householder,
    householder as householder,
)
from ember.distributions.transforms.lower_cholesky_affine import (
    LowerCholeskyAffine as LowerCholeskyAffine,
)
from ember.distributions.transforms.matrix_exponential import (
    ConditionalMatrixExponential as ConditionalMatrixExponential,
    ConditionedMatrixExponential as ConditionedMatrixExponential,
    MatrixExponential as MatrixExponential,
    conditional_matrix_exponential as conditional_matrix_exponential,
    matrix_exponential as matrix_exponential,
)
from ember.distributions.transforms.neural_autoregressive import (
    ConditionalNeuralAutoregressive as ConditionalNeuralAutoregressive,
    NeuralAutoregressive as NeuralAutoregressive,
    conditional_neural_autoregressive as conditional_neural_autoregressive,
    neural_autoregressive as neural_autoregressive,
)
from ember.distributions.transforms.normalize import (
    Normalize as Normalize,
)
from ember.distributions.transforms.ordered import (
    OrderedTransform as OrderedTransform,
)
from ember.distributions.transforms.permute import (
    Permute as Permute,
    permute as permute,
)
from ember.distributions.transforms.planar import (
    ConditionalPlanar as ConditionalPlanar,
    ConditionedPlanar as ConditionedPlanar,
    Planar as Planar,
    conditional_planar as conditional_planar,
    planar as planar,
)
from ember.distributions.transforms.polynomial import (
    Polynomial as Polynomial,
    polynomial as polynomial,
)
from ember.distributions.transforms.power import (
    PositivePowerTransform as PositivePowerTransform,
)
from ember.distributions.transforms.radial import (
    ConditionalRadial as ConditionalRadial,
    ConditionedRadial as ConditionedRadial,
    Radial as Radial,
    conditional_radial as conditional_radial,
    radial as radial,
)
from ember.distributions.transforms.simplex_to_ordered import (
    SimplexToOrderedTransform as SimplexToOrderedTransform,
)
from ember.distributions.transforms.softplus import (
    SoftplusLowerCholeskyTransform as SoftplusLowerCholeskyTransform,
)
from ember.distributions.transforms.spline import (
    ConditionalSpline as ConditionalSpline,
    ConditionedSpline as ConditionedSpline,
    Spline as Spline,
    conditional_spline as conditional_spline,
    spline as spline,
)
from ember.distributions.transforms.spline_autoregressive import (
    ConditionalSplineAutoregressive as ConditionalSplineAutoregressive,
    SplineAutoregressive as SplineAutoregressive,
    conditional_spline_autoregressive as conditional_spline_autoregressive,
    spline_autoregressive as spline_autoregressive,
)
from ember.distributions.transforms.spline_coupling import (
    SplineCoupling as SplineCoupling,
    spline_coupling as spline_coupling,
)
from ember.distributions.transforms.sylvester import (
    Sylvester as Sylvester,
    sylvester as sylvester,
)
from ember.distributions.transforms.unit_cholesky import (
    UnitLowerCholeskyTransform as UnitLowerCholeskyTransform,
)

__all__ = [
    "AbsTransform",
    "affine_autoregressive",
    "affine_coupling",
    "AffineAutoregressive",
    "AffineCoupling",
    "AffineTransform",
    "batchnorm",
    "BatchNorm",
    "block_autoregressive",
    "BlockAutoregressive",
    "CatTransform",
    "CholeskyTransform",
    "ComposeTransform",
    "ComposeTransformModule",
    "conditional_affine_autoregressive",
    "conditional_affine_coupling",
    "conditional_generalized_channel_permute",
    "conditional_householder",
    "conditional_matrix_exponential",
    "conditional_neural_autoregressive",
    "conditional_planar",
    "conditional_radial",
    "conditional_spline",
    "conditional_spline_autoregressive",
    "ConditionalAffineAutoregressive",
    "ConditionalAffineCoupling",
    "ConditionalGeneralizedChannelPermute",
    "ConditionalHouseholder",
    "ConditionalMatrixExponential",
    "ConditionalNeuralAutoregressive",
    "ConditionalPlanar",
    "ConditionalRadial",
    "ConditionalSpline",
    "ConditionalSplineAutoregressive",
    "CorrCholeskyTransform",
    "CorrLCholeskyTransform",
    "CorrMatrixCholeskyTransform",
    "CumulativeDistributionTransform",
    "DiscreteCosineTransform",
    "elu",
    "ELUTransform",
    "ExpTransform",
    "generalized_channel_permute",
    "GeneralizedChannelPermute",
    "HaarTransform",
    "Householder",
    "householder",
    "identity_transform",
    "IndependentTransform",
    "iterated",
    "leaky_relu",
    "LeakyReLUTransform",
    "LowerCholeskyAffine",
    "LowerCholeskyTransform",
    "matrix_exponential",
    "MatrixExponential",
    "neural_autoregressive",
    "NeuralAutoregressive",
    "Normalize",
    "OrderedTransform",
    "permute",
    "Permute",
    "planar",
    "Planar",
    "polynomial",
    "Polynomial",
    "PositiveDefiniteTransform",
    "PositivePowerTransform",
    "PowerTransform",
    "Radial",
    "radial",
    "ReshapeTransform",
    "SigmoidTransform",
    "SimplexToOrderedTransform",
    "SoftmaxTransform",
    "SoftplusLowerCholeskyTransform",
    "SoftplusTransform",
    "Spline",
    "spline",
    "spline_autoregressive",
    "spline_coupling",
    "SplineAutoregressive",
    "SplineCoupling",
    "StackTransform",
    "StickBreakingTransform",
    "Sylvester",
    "sylvester",
    "TanhTransform",
    "Transform",
    "UnitLowerCholeskyTransform",
]


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

"""Ember's distributions: a drop-in replacement for ``pyro.distributions``.

Every :mod:`torch.distributions` distribution has an Ember subclass with Pyro's extra methods
(``to_event``, ``mask``, ``expand_by``, ``score_parts``, ...), alongside :class:`Delta`,
:class:`Unit`, the masked and expanded wrappers, Pyro's extra constraints and transforms, and
the validation switches.

>>> import ember.distributions as dist
>>> d = dist.Normal(0.0, 1.0).expand([3]).to_event(1)
>>> d.batch_shape, d.event_shape
(torch.Size([]), torch.Size([3]))
"""

from torch.distributions import biject_to as biject_to
from torch.distributions import register_kl as register_kl
from torch.distributions import transform_to as transform_to

from ember.distributions import constraints as constraints
from ember.distributions import transforms as transforms
from ember.distributions.avf_mvn import AVFMultivariateNormal as AVFMultivariateNormal
from ember.distributions.coalescent import (
    CoalescentRateLikelihood as CoalescentRateLikelihood,
    CoalescentTimes as CoalescentTimes,
    CoalescentTimesWithRate as CoalescentTimesWithRate,
)
from ember.distributions.hmm import (
    DiscreteHMM as DiscreteHMM,
    GammaGaussianHMM as GammaGaussianHMM,
    GaussianHMM as GaussianHMM,
    GaussianMRF as GaussianMRF,
    IndependentHMM as IndependentHMM,
    LinearHMM as LinearHMM,
)
from ember.distributions.lkj import LKJ as LKJ
from ember.distributions.lkj import LKJCorrCholesky as LKJCorrCholesky
from ember.distributions.multivariate_studentt import MultivariateStudentT as MultivariateStudentT
from ember.distributions.omt_mvn import OMTMultivariateNormal as OMTMultivariateNormal
from ember.distributions.one_one_matching import OneOneMatching as OneOneMatching
from ember.distributions.one_two_matching import OneTwoMatching as OneTwoMatching
from ember.distributions.projected_normal import ProjectedNormal as ProjectedNormal
from ember.distributions.sine_bivariate_von_mises import SineBivariateVonMises as SineBivariateVonMises
from ember.distributions.sine_skewed import SineSkewed as SineSkewed
from ember.distributions.spanning_tree import SpanningTree as SpanningTree
from ember.distributions.von_mises_3d import VonMises3D as VonMises3D
from ember.distributions.conditional import (
    ConditionalDistribution as ConditionalDistribution,
    ConditionalTransform as ConditionalTransform,
    ConditionalTransformedDistribution as ConditionalTransformedDistribution,
    ConditionalTransformModule as ConditionalTransformModule,
)
from ember.distributions.delta import Delta as Delta
from ember.distributions.affine_beta import AffineBeta as AffineBeta
from ember.distributions.asymmetric_laplace import AsymmetricLaplace as AsymmetricLaplace
from ember.distributions.asymmetric_laplace import SoftAsymmetricLaplace as SoftAsymmetricLaplace
from ember.distributions.conjugate import BetaBinomial as BetaBinomial
from ember.distributions.conjugate import DirichletMultinomial as DirichletMultinomial
from ember.distributions.conjugate import GammaPoisson as GammaPoisson
from ember.distributions.diag_normal_mixture import MixtureOfDiagNormals as MixtureOfDiagNormals
from ember.distributions.diag_normal_mixture import (
    MixtureOfDiagNormalsSharedCovariance as MixtureOfDiagNormalsSharedCovariance,
)
from ember.distributions.empirical import Empirical as Empirical
from ember.distributions.extended import ExtendedBetaBinomial as ExtendedBetaBinomial
from ember.distributions.extended import ExtendedBinomial as ExtendedBinomial
from ember.distributions.folded import FoldedDistribution as FoldedDistribution
from ember.distributions.gaussian_scale_mixture import GaussianScaleMixture as GaussianScaleMixture
from ember.distributions.grouped_normal_normal import GroupedNormalNormal as GroupedNormalNormal
from ember.distributions.improper_uniform import ImproperUniform as ImproperUniform
from ember.distributions.log_normal_negative_binomial import (
    LogNormalNegativeBinomial as LogNormalNegativeBinomial,
)
from ember.distributions.logistic import Logistic as Logistic
from ember.distributions.logistic import SkewLogistic as SkewLogistic
from ember.distributions.mixture import MaskedMixture as MaskedMixture
from ember.distributions.nanmasked import NanMaskedMultivariateNormal as NanMaskedMultivariateNormal
from ember.distributions.nanmasked import NanMaskedNormal as NanMaskedNormal
from ember.distributions.ordered_logistic import OrderedLogistic as OrderedLogistic
from ember.distributions.polya_gamma import TruncatedPolyaGamma as TruncatedPolyaGamma
from ember.distributions.rejector import Rejector as Rejector
from ember.distributions.relaxed_straight_through import (
    RelaxedBernoulliStraightThrough as RelaxedBernoulliStraightThrough,
)
from ember.distributions.relaxed_straight_through import (
    RelaxedOneHotCategoricalStraightThrough as RelaxedOneHotCategoricalStraightThrough,
)
from ember.distributions.softlaplace import SoftLaplace as SoftLaplace
from ember.distributions.stable import Stable as Stable
from ember.distributions.stable import StableWithLogProb as StableWithLogProb
from ember.distributions.zero_inflated import ZeroInflatedDistribution as ZeroInflatedDistribution
from ember.distributions.zero_inflated import (
    ZeroInflatedNegativeBinomial as ZeroInflatedNegativeBinomial,
)
from ember.distributions.zero_inflated import ZeroInflatedPoisson as ZeroInflatedPoisson
from ember.distributions.distribution import Distribution as Distribution
from ember.distributions.kl import kl_divergence as kl_divergence
from ember.distributions.score_parts import ScoreParts as ScoreParts
from ember.distributions.torch import (
    Bernoulli as Bernoulli,
    Beta as Beta,
    Binomial as Binomial,
    Categorical as Categorical,
    Cauchy as Cauchy,
    Chi2 as Chi2,
    ContinuousBernoulli as ContinuousBernoulli,
    Dirichlet as Dirichlet,
    Exponential as Exponential,
    ExponentialFamily as ExponentialFamily,
    FisherSnedecor as FisherSnedecor,
    Gamma as Gamma,
    GeneralizedPareto as GeneralizedPareto,
    Geometric as Geometric,
    Gumbel as Gumbel,
    HalfCauchy as HalfCauchy,
    HalfNormal as HalfNormal,
    Independent as Independent,
    InverseGamma as InverseGamma,
    Kumaraswamy as Kumaraswamy,
    Laplace as Laplace,
    LKJCholesky as LKJCholesky,
    LogisticNormal as LogisticNormal,
    LogNormal as LogNormal,
    LowRankMultivariateNormal as LowRankMultivariateNormal,
    MixtureSameFamily as MixtureSameFamily,
    Multinomial as Multinomial,
    MultivariateNormal as MultivariateNormal,
    NegativeBinomial as NegativeBinomial,
    Normal as Normal,
    OneHotCategorical as OneHotCategorical,
    OneHotCategoricalStraightThrough as OneHotCategoricalStraightThrough,
    Pareto as Pareto,
    Poisson as Poisson,
    RelaxedBernoulli as RelaxedBernoulli,
    RelaxedOneHotCategorical as RelaxedOneHotCategorical,
    StudentT as StudentT,
    TransformedDistribution as TransformedDistribution,
    Uniform as Uniform,
    VonMises as VonMises,
    Weibull as Weibull,
    Wishart as Wishart,
)
from ember.distributions.torch_distribution import (
    ExpandedDistribution as ExpandedDistribution,
    MaskedDistribution as MaskedDistribution,
    TorchDistribution as TorchDistribution,
    TorchDistributionMixin as TorchDistributionMixin,
)
from ember.distributions.torch_transform import (
    ComposeTransformModule as ComposeTransformModule,
    TransformModule as TransformModule,
)
from ember.distributions.unit import Unit as Unit
from ember.distributions.util import (
    broadcast_shape as broadcast_shape,
    enable_validation as enable_validation,
    is_identically_one as is_identically_one,
    is_identically_zero as is_identically_zero,
    is_validation_enabled as is_validation_enabled,
    scale_and_mask as scale_and_mask,
    sum_rightmost as sum_rightmost,
    validation_enabled as validation_enabled,
)

__all__ = [
    "AVFMultivariateNormal",
    "AffineBeta",
    "AsymmetricLaplace",
    "Bernoulli",
    "Beta",
    "BetaBinomial",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Chi2",
    "CoalescentRateLikelihood",
    "CoalescentTimes",
    "CoalescentTimesWithRate",
    "ComposeTransformModule",
    "ConditionalDistribution",
    "ConditionalTransform",
    "ConditionalTransformModule",
    "ConditionalTransformedDistribution",
    "ContinuousBernoulli",
    "Delta",
    "Dirichlet",
    "DirichletMultinomial",
    "DiscreteHMM",
    "Distribution",
    "Empirical",
    "ExpandedDistribution",
    "Exponential",
    "ExponentialFamily",
    "ExtendedBetaBinomial",
    "ExtendedBinomial",
    "FisherSnedecor",
    "FoldedDistribution",
    "Gamma",
    "GammaGaussianHMM",
    "GammaPoisson",
    "GaussianHMM",
    "GaussianMRF",
    "GaussianScaleMixture",
    "GeneralizedPareto",
    "Geometric",
    "GroupedNormalNormal",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "ImproperUniform",
    "Independent",
    "IndependentHMM",
    "InverseGamma",
    "Kumaraswamy",
    "LKJ",
    "LKJCholesky",
    "LKJCorrCholesky",
    "Laplace",
    "LinearHMM",
    "LogNormal",
    "LogNormalNegativeBinomial",
    "Logistic",
    "LogisticNormal",
    "LowRankMultivariateNormal",
    "MaskedDistribution",
    "MaskedMixture",
    "MixtureOfDiagNormals",
    "MixtureOfDiagNormalsSharedCovariance",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "MultivariateStudentT",
    "NanMaskedMultivariateNormal",
    "NanMaskedNormal",
    "NegativeBinomial",
    "Normal",
    "OMTMultivariateNormal",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "OneOneMatching",
    "OneTwoMatching",
    "OrderedLogistic",
    "Pareto",
    "Poisson",
    "ProjectedNormal",
    "Rejector",
    "RelaxedBernoulli",
    "RelaxedBernoulliStraightThrough",
    "RelaxedOneHotCategorical",
    "RelaxedOneHotCategoricalStraightThrough",
    "ScoreParts",
    "SineBivariateVonMises",
    "SineSkewed",
    "SkewLogistic",
    "SoftAsymmetricLaplace",
    "SoftLaplace",
    "SpanningTree",
    "Stable",
    "StableWithLogProb",
    "StudentT",
    "TorchDistribution",
    "TorchDistributionMixin",
    "TransformModule",
    "TransformedDistribution",
    "TruncatedPolyaGamma",
    "Uniform",
    "Unit",
    "VonMises",
    "VonMises3D",
    "Weibull",
    "Wishart",
    "ZeroInflatedDistribution",
    "ZeroInflatedNegativeBinomial",
    "ZeroInflatedPoisson",
    "biject_to",
    "broadcast_shape",
    "constraints",
    "enable_validation",
    "is_identically_one",
    "is_identically_zero",
    "is_validation_enabled",
    "kl_divergence",
    "register_kl",
    "scale_and_mask",
    "sum_rightmost",
    "transform_to",
    "transforms",
    "validation_enabled",
]

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
from ember.distributions.delta import Delta as Delta
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
    "Bernoulli",
    "Beta",
    "biject_to",
    "Binomial",
    "broadcast_shape",
    "Categorical",
    "Cauchy",
    "Chi2",
    "CoalescentRateLikelihood",
    "CoalescentTimes",
    "CoalescentTimesWithRate",
    "constraints",
    "ContinuousBernoulli",
    "Delta",
    "Dirichlet",
    "DiscreteHMM",
    "Distribution",
    "enable_validation",
    "ExpandedDistribution",
    "Exponential",
    "ExponentialFamily",
    "FisherSnedecor",
    "Gamma",
    "GammaGaussianHMM",
    "GaussianHMM",
    "GaussianMRF",
    "GeneralizedPareto",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Independent",
    "IndependentHMM",
    "InverseGamma",
    "is_identically_one",
    "is_identically_zero",
    "is_validation_enabled",
    "kl_divergence",
    "Kumaraswamy",
    "Laplace",
    "LinearHMM",
    "LKJ",
    "LKJCholesky",
    "LKJCorrCholesky",
    "LogisticNormal",
    "LogNormal",
    "LowRankMultivariateNormal",
    "MaskedDistribution",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "MultivariateStudentT",
    "NegativeBinomial",
    "Normal",
    "OMTMultivariateNormal",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "OneOneMatching",
    "OneTwoMatching",
    "Pareto",
    "Poisson",
    "ProjectedNormal",
    "register_kl",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "scale_and_mask",
    "ScoreParts",
    "SineBivariateVonMises",
    "SineSkewed",
    "SpanningTree",
    "StudentT",
    "sum_rightmost",
    "TorchDistribution",
    "TorchDistributionMixin",
    "transform_to",
    "TransformedDistribution",
    "transforms",
    "Uniform",
    "Unit",
    "validation_enabled",
    "VonMises",
    "VonMises3D",
    "Weibull",
    "Wishart",
]

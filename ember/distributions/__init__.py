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
from ember.distributions.conditional import (
    ConditionalDistribution as ConditionalDistribution,
    ConditionalTransform as ConditionalTransform,
    ConditionalTransformedDistribution as ConditionalTransformedDistribution,
    ConditionalTransformModule as ConditionalTransformModule,
)
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
    "Bernoulli",
    "Beta",
    "biject_to",
    "Binomial",
    "broadcast_shape",
    "Categorical",
    "Cauchy",
    "Chi2",
    "ComposeTransformModule",
    "ConditionalDistribution",
    "ConditionalTransform",
    "ConditionalTransformedDistribution",
    "ConditionalTransformModule",
    "constraints",
    "ContinuousBernoulli",
    "Delta",
    "Dirichlet",
    "Distribution",
    "enable_validation",
    "ExpandedDistribution",
    "Exponential",
    "ExponentialFamily",
    "FisherSnedecor",
    "Gamma",
    "GeneralizedPareto",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Independent",
    "InverseGamma",
    "is_identically_one",
    "is_identically_zero",
    "is_validation_enabled",
    "kl_divergence",
    "Kumaraswamy",
    "Laplace",
    "LKJCholesky",
    "LogisticNormal",
    "LogNormal",
    "LowRankMultivariateNormal",
    "MaskedDistribution",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "Pareto",
    "Poisson",
    "register_kl",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "scale_and_mask",
    "ScoreParts",
    "StudentT",
    "sum_rightmost",
    "TorchDistribution",
    "TorchDistributionMixin",
    "transform_to",
    "TransformedDistribution",
    "TransformModule",
    "transforms",
    "Uniform",
    "Unit",
    "validation_enabled",
    "VonMises",
    "Weibull",
    "Wishart",
]

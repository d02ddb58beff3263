"""Automatic guides: variational families built from a model's structure (Pyro's ``pyro.infer.autoguide``).

>>> import ember, torch
>>> import ember.distributions as dist
>>> ember.clear_param_store()
>>> def model():
...     ember.sample("x", dist.Normal(0.0, 1.0))
>>> guide = AutoNormal(model)
>>> sorted(guide())
['x']
"""

from ember.infer.autoguide.continuous import (
    AutoContinuous,
    AutoDiagonalNormal,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
)
from ember.infer.autoguide.discrete import AutoDiscreteParallel
from ember.infer.autoguide.effect import (
    AutoHierarchicalNormalMessenger,
    AutoMessenger,
    AutoNormalMessenger,
    AutoRegressiveMessenger,
)
from ember.infer.autoguide.gaussian import AutoGaussian
from ember.infer.autoguide.guide import AutoCallable, AutoGuide, AutoGuideList
from ember.infer.autoguide.initialization import (
    init_to_feasible,
    init_to_generated,
    init_to_mean,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from ember.infer.autoguide.normal import AutoDelta, AutoNormal
from ember.infer.autoguide.normalizing_flow import AutoIAFNormal, AutoNormalizingFlow
from ember.infer.autoguide.structured import AutoStructured
from ember.infer.autoguide.utils import mean_field_entropy

__all__ = [
    "AutoCallable",
    "AutoContinuous",
    "AutoDelta",
    "AutoDiagonalNormal",
    "AutoDiscreteParallel",
    "AutoGaussian",
    "AutoGuide",
    "AutoGuideList",
    "AutoHierarchicalNormalMessenger",
    "AutoIAFNormal",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMessenger",
    "AutoMultivariateNormal",
    "AutoNormal",
    "AutoNormalizingFlow",
    "AutoNormalMessenger",
    "AutoRegressiveMessenger",
    "AutoStructured",
    "init_to_feasible",
    "init_to_generated",
    "init_to_mean",
    "init_to_median",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
    "mean_field_entropy",
]

"""Pyro's module path ``pyro.infer.autoguide.guides``: the guide classes, re-exported."""

from ember.infer.autoguide.continuous import (
    AutoContinuous,
    AutoDiagonalNormal,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
)
from ember.infer.autoguide.discrete import AutoDiscreteParallel
from ember.infer.autoguide.guide import AutoCallable, AutoGuide, AutoGuideList, prototype_hide_fn
from ember.infer.autoguide.normal import AutoDelta, AutoNormal
from ember.infer.autoguide.normalizing_flow import AutoIAFNormal, AutoNormalizingFlow

__all__ = [
    "AutoCallable",
    "AutoContinuous",
    "AutoDelta",
    "AutoDiagonalNormal",
    "AutoDiscreteParallel",
    "AutoGuide",
    "AutoGuideList",
    "AutoIAFNormal",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal",
    "AutoNormal",
    "AutoNormalizingFlow",
    "prototype_hide_fn",
]

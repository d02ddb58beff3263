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

__all__ = [
    "AutoCallable",
    "AutoContinuous",
    "AutoDelta",
    "AutoDiagonalNormal",
    "AutoDiscreteParallel",
    "AutoGuide",
    "AutoGuideList",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal",
    "AutoNormal",
    "prototype_hide_fn",
]

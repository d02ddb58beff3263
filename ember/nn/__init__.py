"""Torch modules whose attributes are Ember params and samples (Pyro's ``pyro.nn``), and the
autoregressive and dense networks that parametrise normalizing flows.

As in Pyro, :func:`~ember.nn.module.to_pyro_module_` and :func:`~ember.nn.module.clear` are
imported from :mod:`ember.nn.module`.
"""

from ember.nn.auto_reg_nn import (
    AutoRegressiveNN as AutoRegressiveNN,
    ConditionalAutoRegressiveNN as ConditionalAutoRegressiveNN,
    MaskedLinear as MaskedLinear,
)
from ember.nn.dense_nn import ConditionalDenseNN as ConditionalDenseNN, DenseNN as DenseNN
from ember.nn.module import PyroModule, PyroModuleList, PyroParam, PyroSample, pyro_method

__all__ = [
    "AutoRegressiveNN",
    "ConditionalAutoRegressiveNN",
    "ConditionalDenseNN",
    "DenseNN",
    "MaskedLinear",
    "PyroModule",
    "PyroModuleList",
    "PyroParam",
    "PyroSample",
    "pyro_method",
]

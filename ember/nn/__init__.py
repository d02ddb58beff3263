"""Torch modules whose attributes are Ember params and samples (Pyro's ``pyro.nn``).

As in Pyro, :func:`~ember.nn.module.to_pyro_module_` and :func:`~ember.nn.module.clear` are
imported from :mod:`ember.nn.module`.
"""

from ember.nn.module import PyroModule, PyroModuleList, PyroParam, PyroSample, pyro_method

__all__ = [
    "PyroModule",
    "PyroModuleList",
    "PyroParam",
    "PyroSample",
    "pyro_method",
]

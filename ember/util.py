"""Pyro's ``pyro.util``: RNG seeding, NaN/inf warnings, timing helpers and the trace checks inference runs.

This is a public facade at the top of the import graph (it re-exports from
:mod:`ember.infer.util`, :mod:`ember.poutine.util` and :mod:`ember._util`); code inside Ember
imports the bottom-level helpers from :mod:`ember._util` instead. ``timeit`` is the standard
library module, as in Pyro.
"""

import timeit

from ember._util import (
    ExperimentalWarning,
    get_rng_state,
    ignore_experimental_warning,
    ignore_jit_warnings,
    jit_iter,
    optional,
    set_rng_seed,
    set_rng_state,
    timed,
    torch_float,
    torch_isinf,
    torch_isnan,
    warn_if_inf,
    warn_if_nan,
)
from ember.infer.util import (
    check_if_enumerated,
    check_model_guide_match,
    check_site_shape,
    check_traceenum_requirements,
    check_traces_match,
)
from ember.poutine.util import save_visualization, site_is_subsample

__all__ = [
    "ExperimentalWarning",
    "check_if_enumerated",
    "check_model_guide_match",
    "check_site_shape",
    "check_traceenum_requirements",
    "check_traces_match",
    "get_rng_state",
    "ignore_experimental_warning",
    "ignore_jit_warnings",
    "jit_iter",
    "optional",
    "save_visualization",
    "set_rng_seed",
    "set_rng_state",
    "site_is_subsample",
    "timed",
    "timeit",
    "torch_float",
    "torch_isinf",
    "torch_isnan",
    "warn_if_inf",
    "warn_if_nan",
]

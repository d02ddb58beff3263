"""Pyro's ``pyro.util``: RNG seeding, NaN/inf warnings and the trace checks inference runs.

This is a public facade at the top of the import graph (it re-exports from
:mod:`ember.infer.util` and :mod:`ember.poutine.util`); code inside Ember imports the
bottom-level helpers from :mod:`ember._util` instead.
"""

from ember._util import (
    get_rng_state,
    ignore_jit_warnings,
    jit_iter,
    set_rng_seed,
    set_rng_state,
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
from ember.poutine.util import site_is_subsample

__all__ = [
    "check_if_enumerated",
    "check_model_guide_match",
    "check_site_shape",
    "check_traceenum_requirements",
    "check_traces_match",
    "get_rng_state",
    "ignore_jit_warnings",
    "jit_iter",
    "set_rng_seed",
    "set_rng_state",
    "site_is_subsample",
    "torch_isinf",
    "torch_isnan",
    "warn_if_inf",
    "warn_if_nan",
]

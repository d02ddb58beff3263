"""Ember: a typed, fast, Pyro-compatible effect-handler core for probabilistic programming.

Replace ``import pyro`` with ``import ember as pyro``::

    import ember as pyro
    import ember.distributions as dist

    def model(data):
        loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(data)):
            pyro.sample("obs", dist.Normal(loc, 1.0), obs=data)
"""

from ember import distributions, params, poutine, settings
from ember.logger import log
from ember.poutine.handlers import condition, do, markov
from ember.primitives import (
    barrier,
    clear_param_store,
    deterministic,
    enable_validation,
    factor,
    get_param_store,
    iarange,
    irange,
    module,
    param,
    plate,
    plate_stack,
    random_module,
    sample,
    subsample,
    validation_enabled,
)
from ember._util import get_rng_state, set_rng_seed, set_rng_state

# Like ``import pyro``, ``import ember`` makes the inference, optimizer and module
# subpackages available as attributes; they build on the primitives above.
from ember import infer, nn, optim, util  # isort: skip
from ember.infer.inspect import render_model  # isort: skip

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "barrier",
    "clear_param_store",
    "condition",
    "deterministic",
    "distributions",
    "do",
    "enable_validation",
    "factor",
    "get_param_store",
    "get_rng_state",
    "iarange",
    "infer",
    "irange",
    "log",
    "markov",
    "module",
    "nn",
    "optim",
    "param",
    "params",
    "plate",
    "plate_stack",
    "poutine",
    "random_module",
    "render_model",
    "sample",
    "set_rng_seed",
    "set_rng_state",
    "settings",
    "subsample",
    "util",
    "validation_enabled",
]

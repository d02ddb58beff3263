"""Pyro's ``pyro.generic``: programs written once against the :mod:`pyroapi` interface.

``from ember.generic import distributions, infer, optim, pyro, pyro_backend`` gives
:mod:`pyroapi`'s dispatching modules. Importing this module registers two backends:
``"ember"`` (Ember's distributions, handlers, inference and optimizers) and
``"ember.minipyro"`` (the teaching implementation :mod:`ember.contrib.minipyro` with
Ember's distributions). Select one with ``with pyro_backend("ember"): ...``. As in
pyroapi, the default backend is ``"pyro"``; the alias ``"minipyro"`` keeps naming
pyro-ppl's minipyro, since one process may use both libraries.

Needs the ``pyro-api`` package: ``pip install 'ember[generic]'``.
"""

try:
    from pyroapi import (
        distributions,
        handlers,
        infer,
        ops,
        optim,
        pyro,
        pyro_backend,
        register_backend,
    )
except ImportError as e:  # pragma: no cover - exercised only without the extra installed
    raise ImportError("ember.generic needs the pyro-api package: pip install 'ember[generic]'") from e

__all__ = ["distributions", "handlers", "infer", "ops", "optim", "pyro", "pyro_backend"]

register_backend(
    "ember",
    {
        "distributions": "ember.distributions",
        "handlers": "ember.poutine",
        "infer": "ember.infer",
        "ops": "torch",
        "optim": "ember.optim",
        "pyro": "ember",
    },
)
register_backend(
    "ember.minipyro",
    {
        "distributions": "ember.distributions",
        "handlers": "ember.poutine",
        "infer": "ember.contrib.minipyro",
        "ops": "torch",
        "optim": "ember.contrib.minipyro",
        "pyro": "ember.contrib.minipyro",
    },
)

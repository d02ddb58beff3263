"""Run pyroapi's shared conformance suite (the one Pyro, NumPyro and funsor run) against Ember."""

from __future__ import annotations

from typing import Iterator

import pytest
from pyroapi import pyro_backend, register_backend
from pyroapi.tests import *  # noqa: F401,F403  # the suite under test; it needs the `backend` fixture below

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


@pytest.fixture
def backend() -> Iterator[None]:
    with pyro_backend("ember"):
        yield

"""Pyro's extra distributions at sample sites: Ember's ELBO agrees with pyro-ppl's."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

import ember
import ember.distributions as dist
from ember.infer import Trace_ELBO

# Pyro is an unannotated test oracle.
pyro: Any = importlib.import_module("pyro")
pyro_dist: Any = importlib.import_module("pyro.distributions")
pyro_infer: Any = importlib.import_module("pyro.infer")

_COUNTS = torch.tensor([0.0, 3.0, 0.0, 1.0, 7.0, 0.0])


def _model(lib: Any, d: Any) -> Callable[[], None]:
    def model() -> None:
        rate = lib.sample("rate", d.Logistic(1.0, 0.5))
        gate = torch.tensor(0.3)
        with lib.plate("data", len(_COUNTS)):
            lib.sample("obs", d.ZeroInflatedPoisson(rate.exp(), gate=gate), obs=_COUNTS)
            lib.sample("aux", d.GammaPoisson(2.0, rate.exp()), obs=_COUNTS)

    return model


def _guide(lib: Any, d: Any) -> Callable[[], None]:
    def guide() -> None:
        loc = lib.param("loc", torch.tensor(0.5))
        lib.sample("rate", d.SoftLaplace(loc, 0.3))

    return guide


def test_trace_elbo_with_zoo_sites_matches_pyro() -> None:
    losses = []
    for lib, d in ((ember, dist), (pyro, pyro_dist)):
        lib.clear_param_store()
        torch.manual_seed(14)
        elbo = Trace_ELBO() if lib is ember else pyro_infer.Trace_ELBO()
        losses.append(elbo.loss(_model(lib, d), _guide(lib, d)))
    assert abs(losses[0] - losses[1]) < 1e-4 * (1 + abs(losses[1]))

"""pyroapi's shared suite against ``ember.contrib.minipyro`` (the ``ember.minipyro`` backend),
plus direct checks of the teaching implementation's semantics."""

from __future__ import annotations

import inspect
from typing import Iterator

import pytest
import torch
from pyroapi import pyro_backend
from pyroapi.tests import *  # noqa: F401,F403  # the suite under test; it needs the `backend` fixture below

import ember.distributions as dist
import ember.generic  # noqa: F401  # registers the backends
from ember.contrib import minipyro


@pytest.fixture
def backend() -> Iterator[None]:
    with pyro_backend("ember.minipyro"):
        yield


def test_minipyro_is_one_readable_file() -> None:
    assert len(inspect.getsource(minipyro).splitlines()) < 450


def test_trace_replay_and_block_follow_the_lifecycle() -> None:
    def guide() -> None:
        minipyro.sample("z", dist.Normal(1.0, 1.0))

    def model() -> torch.Tensor:
        z = minipyro.sample("z", dist.Normal(0.0, 1.0))
        with minipyro.plate("data", 3, dim=-1):
            return minipyro.sample("x", dist.Normal(z, 1.0))  # type: ignore[no-any-return]  # minipyro returns Any

    guide_trace = minipyro.trace(guide).get_trace()
    model_trace = minipyro.trace(minipyro.replay(model, guide_trace)).get_trace()
    assert model_trace["z"]["value"] is guide_trace["z"]["value"]
    assert model_trace["x"]["value"].shape == (3,)
    hidden = minipyro.trace(minipyro.block(model, hide_fn=lambda msg: msg["name"] == "x")).get_trace()
    assert list(hidden) == ["z"]
    assert minipyro.PYRO_STACK == []


def test_svi_with_minipyro_recovers_the_conjugate_posterior_mean() -> None:
    minipyro.get_param_store().clear()
    data = torch.tensor([1.0, 2.0, 3.0])

    def model() -> None:
        loc = minipyro.sample("loc", dist.Normal(0.0, 1.0))
        with minipyro.plate("data", 3, dim=-1):
            minipyro.sample("obs", dist.Normal(loc, 1.0), obs=data)

    def guide() -> None:
        minipyro.sample("loc", dist.Normal(minipyro.param("m", torch.tensor(0.0)), 0.5))

    torch.manual_seed(0)
    svi = minipyro.SVI(model, guide, minipyro.Adam({"lr": 0.05}), minipyro.Trace_ELBO())
    for _ in range(400):
        svi.step()
    # Posterior of loc: N(sum(data) / (n + 1), 1 / (n + 1)) = N(1.5, 0.25).
    assert abs(minipyro.param("m").item() - 1.5) < 0.15

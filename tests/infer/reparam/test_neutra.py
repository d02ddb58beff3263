"""NeuTraReparam: Pyro's trace on the same seed, the change of variables exact, bad input."""

from __future__ import annotations

import math
from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.autoguide import AutoDelta, AutoDiagonalNormal
from ember.infer.reparam import NeuTraReparam
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


def test_trace_equals_pyros_on_the_same_seed() -> None:
    def program(b: Backend) -> tuple[Any, dict[str, torch.Tensor]]:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            loc = b.pyro.sample("loc", b.dist.Normal(0.0, 2.0))
            b.pyro.sample("scale", b.dist.LogNormal(0.0, 1.0))
            with b.pyro.plate("data", 3):
                b.pyro.sample("z", b.dist.Normal(loc, 1.0))

        guide = b.infer.autoguide.AutoDiagonalNormal(model)
        guide()
        neutra = reparams.NeuTraReparam(guide)
        tr = b.poutine.trace(neutra.reparam(model)).get_trace()
        samples = neutra.transform_sample(torch.randn(4, 1, guide.latent_dim))  # batch left of the plate
        return tr, samples

    (ours, our_samples), (theirs, their_samples) = run_both(program, seed=6)
    assert list(ours.nodes) == ["_INPUT", "loc_shared_latent", "loc", "scale", "data", "z", "_RETURN"]
    assert_traces_match(ours, theirs)
    assert our_samples.keys() == their_samples.keys() == {"loc", "scale", "z"}
    for name in their_samples:
        assert torch.allclose(our_samples[name], their_samples[name], rtol=1e-5, atol=1e-6), name


def test_the_density_of_the_shared_latent_is_the_model_density_through_the_transform() -> None:
    # A one-site model: the reparameterized density over z must integrate to one, and the
    # mean of x = T(z) under it must be the model's mean (the marginal is unchanged).
    def model() -> None:
        ember.sample("x", dist.Normal(1.0, 2.0))

    guide = AutoDiagonalNormal(model, init_scale=0.7)
    guide()
    neutra = NeuTraReparam(guide)
    reparam_model = neutra.reparam(model)
    grid = torch.linspace(-20.0, 20.0, 801)
    densities, xs = [], []
    for z in grid:
        tr = poutine.trace(poutine.condition(reparam_model, {"x_shared_latent": z.reshape(1)})).get_trace()
        densities.append(torch.as_tensor(tr.log_prob_sum()).exp())
        xs.append(tr.nodes["x"]["value"])
    density = torch.stack(densities).detach()
    x = torch.stack(xs).detach().reshape(-1)
    # The shared latent is masked out: its density is carried by the site "x".
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-4)
    assert torch.trapezoid(density * x, grid).item() == pytest.approx(1.0, abs=1e-3)
    assert torch.trapezoid(density * (x - 1) ** 2, grid).item() == pytest.approx(4.0, abs=1e-3)
    assert math.isfinite(density.max().item())


def test_guides_that_do_not_fit_and_observed_sites_are_refused() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(TypeError, match="NeuTraReparam expected an AutoContinuous guide"):
        NeuTraReparam(AutoDelta(model))  # type: ignore[arg-type]  # the point of the test

    guide = AutoDiagonalNormal(model)
    guide()
    neutra = NeuTraReparam(guide)

    def observed() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(0.5))

    with pytest.raises(NotImplementedError, match=r"At pyro.sample\('x',...\), NeuTraReparam does not support observe statements"):
        poutine.trace(neutra.reparam(observed)).get_trace()
    assert ember.poutine.runtime.get_stack() == ()

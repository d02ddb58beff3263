"""Warmup schedule, step size search and mass matrices."""

from __future__ import annotations

from typing import Any

import pyro.infer.mcmc.adaptation
import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer.mcmc import MCMC, NUTS, ArrowheadMassMatrix, BlockMassMatrix, WarmupAdapter

PyroWarmupAdapter: Any = pyro.infer.mcmc.adaptation.WarmupAdapter  # pyro is untyped


@pytest.mark.parametrize("warmup", [5, 19, 20, 60, 149, 150, 1000])
def test_schedule_equals_pyros(warmup: int) -> None:
    mine = WarmupAdapter(adapt_step_size=True, adapt_mass_matrix=True)
    theirs = PyroWarmupAdapter(adapt_step_size=True, adapt_mass_matrix=True)
    mine._warmup_steps = theirs._warmup_steps = warmup
    assert [tuple(w) for w in mine._build_adaptation_schedule()] == [tuple(w) for w in theirs._build_adaptation_schedule()]


def _block_matrix(shape: dict[tuple[str, ...], tuple[int, ...]], slices: dict[str, slice], chains: int = 1) -> BlockMassMatrix:
    m = BlockMassMatrix()
    m.bind(slices)
    m.configure(shape, options={"dtype": torch.float64}, num_chains=chains)
    return m


def test_block_mass_matrix_velocity_and_momentum_covariance() -> None:
    slices = {"a": slice(0, 2), "b": slice(2, 3), "c": slice(3, 5)}
    m = _block_matrix({("a", "c"): (4, 4), ("b",): (1,)}, slices)
    dense = torch.tensor([[2.0, 0.5, 0.1, 0.0], [0.5, 1.0, 0.0, 0.2], [0.1, 0.0, 3.0, 0.4], [0.0, 0.2, 0.4, 1.5]], dtype=torch.float64)
    m.inverse_mass_matrix = {("a", "c"): dense, ("b",): torch.tensor([4.0], dtype=torch.float64)}
    r = torch.randn(1, 5, dtype=torch.float64)
    idx = torch.tensor([0, 1, 3, 4])
    v = m.velocity(r)
    assert torch.allclose(v[0, idx], dense @ r[0, idx]) and torch.allclose(v[0, 2], 4.0 * r[0, 2])
    full = m.flat_inverse()[0]
    assert torch.allclose(full[idx[:, None], idx[None, :]], dense) and float(full[2, 2]) == 4.0
    momenta = m.momentum(torch.randn(4000, 5, dtype=torch.float64))
    expected = torch.linalg.inv(full)  # momenta ~ N(0, M), M the mass matrix
    assert torch.allclose(torch.cov(momenta.T), expected, atol=0.1 * float(expected.abs().max()))


def test_arrowhead_mass_matrix_matches_its_dense_form() -> None:
    m = ArrowheadMassMatrix(head_size=1)
    m.configure({("x",): (3,)}, options={"dtype": torch.float64})
    for row in torch.randn(200, 3, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64):
        m.update(row[None])
    m.end_adaptation()
    dense = m.flat_inverse()[0]
    r = torch.randn(1, 3, dtype=torch.float64)
    assert torch.allclose(m.velocity(r)[0], dense @ r[0])
    momenta = torch.cat([m.momentum(e[None]) for e in torch.randn(3000, 3, dtype=torch.float64)])
    expected = torch.linalg.inv(dense)
    assert torch.allclose(torch.cov(momenta.T), expected, atol=0.1 * float(expected.abs().max()))
    assert dense[1, 2] == 0 and dense[0, 1] != 0


def test_step_size_and_mass_matrix_adapt_to_a_scaled_gaussian() -> None:
    scales = torch.tensor([0.1, 1.0, 10.0])

    def model() -> None:
        ember.sample("x", dist.Normal(torch.zeros(3), scales).to_event(1))

    kernel = NUTS(model)
    mcmc = MCMC(kernel, num_samples=5, warmup_steps=250, disable_progbar=True)
    mcmc.run()
    inverse = kernel.inverse_mass_matrix[("x",)]
    # The adapted inverse mass matrix estimates the posterior variances (within ~25% at 250 steps).
    ratio = inverse / scales**2
    assert bool((ratio > 0.5).all() and (ratio < 2.0).all()), ratio
    assert 0.05 < kernel.step_size < 3.0

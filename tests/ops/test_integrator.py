"""The dict-based leapfrog integrator against pyro-ppl and exact harmonic motion."""

from __future__ import annotations

import math

from typing import Any

import pyro.ops.integrator
import torch

from ember.ops.integrator import potential_grad, velocity_verlet

pyro_velocity_verlet: Any = pyro.ops.integrator.velocity_verlet  # pyro is untyped


def _potential(z: dict[str, torch.Tensor]) -> torch.Tensor:
    value: torch.Tensor = 0.5 * (z["a"] ** 2).sum() + 2.0 * (z["b"] ** 2).sum()
    return value


def test_leapfrog_equals_pyro_and_conserves_energy() -> None:
    z = {"a": torch.tensor([1.0, -0.5], dtype=torch.float64), "b": torch.tensor(0.3, dtype=torch.float64)}
    r = {"a": torch.tensor([0.2, 0.1], dtype=torch.float64), "b": torch.tensor(-1.0, dtype=torch.float64)}
    mine = velocity_verlet(z, r, _potential, lambda r: r, 0.01, 200)
    theirs = pyro_velocity_verlet(z, r, _potential, lambda r: r, 0.01, 200)
    for got, want in zip(mine[:3], theirs[:3]):
        for name in got:
            assert torch.allclose(got[name], want[name])
    assert torch.allclose(mine[3], theirs[3])
    def energy(z: dict[str, torch.Tensor], r: dict[str, torch.Tensor]) -> float:
        return float(_potential(z)) + 0.5 * sum(float((v**2).sum()) for v in r.values())

    assert abs(energy(mine[0], mine[1]) - energy(z, r)) < 1e-4
    # The "a" coordinates move as cos/sin with unit frequency.
    t = 2.0
    expected = z["a"] * math.cos(t) + r["a"] * math.sin(t)
    assert torch.allclose(mine[0]["a"], expected, atol=1e-4)


def test_potential_grad_handles_singular_matrices() -> None:
    def potential(z: dict[str, torch.Tensor]) -> torch.Tensor:
        value: torch.Tensor = torch.linalg.cholesky(z["m"]).sum()
        return value

    grads, value = potential_grad(potential, {"m": torch.zeros(2, 2)})
    assert value == math.inf and bool(grads["m"].isnan().all())

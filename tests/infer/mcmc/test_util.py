"""initialize_model, predictive and select_samples."""

from __future__ import annotations

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer.mcmc import MCMC, NUTS, ArrowheadMassMatrix
from ember.infer.mcmc.util import initialize_model, predictive, select_samples


def model(y: torch.Tensor | None = None) -> None:
    loc = ember.sample("loc", dist.Normal(0.0, 1.0))
    scale = ember.sample("scale", dist.LogNormal(0.0, 0.5))
    with ember.plate("data", 3):
        ember.sample("y", dist.Normal(loc, scale), obs=y)


def test_initialize_model_returns_pyros_four_tuple_with_stacked_chains() -> None:
    y = torch.tensor([0.5, 1.0, 1.5])
    params, potential_fn, transforms, trace = initialize_model(model, (y,), num_chains=3)
    assert sorted(params) == ["loc", "scale"] and params["scale"].shape == (3,)
    assert set(transforms) == {"loc", "scale"} and trace.nodes["y"]["is_observed"]
    loc, u = torch.tensor(0.1), torch.tensor(0.7)
    # scale = exp(u): the potential carries the log-Jacobian u of the inverse transform.
    log_joint = (dist.Normal(0.0, 1.0).log_prob(loc) + dist.LogNormal(0.0, 0.5).log_prob(u.exp())
                 + dist.Normal(loc, u.exp()).log_prob(y).sum())
    assert torch.allclose(potential_fn({"loc": loc, "scale": u}), -(log_joint + u))


def test_predictive_is_deprecated_and_draws_observations() -> None:
    samples = {"loc": torch.tensor([0.0, 10.0]), "scale": torch.tensor([1.0, 1.0])}
    with pytest.warns(FutureWarning, match="deprecated"):
        out = predictive(model, samples)
    assert out["y"].shape == (2, 3)
    assert float(out["y"][1].mean()) > 5.0 > float(out["y"][0].mean())


def test_select_samples_group_by_chain_with_resampling() -> None:
    samples = {"x": torch.arange(12.0).reshape(3, 4)}
    drawn = select_samples(samples, num_samples=5, group_by_chain=True)
    assert drawn["x"].shape == (3, 5)
    assert bool((drawn["x"] // 4 == torch.arange(3.0)[:, None]).all())
    with pytest.raises(ValueError, match="No samples found"):
        select_samples({}, num_samples=2)


def test_arrowhead_mass_matrix_adapter_samples() -> None:
    kernel = NUTS(model)
    kernel.mass_matrix_adapter = ArrowheadMassMatrix(head_size=1)
    mcmc = MCMC(kernel, num_samples=20, warmup_steps=40, disable_progbar=True)
    mcmc.run(torch.tensor([0.5, 1.0, 1.5]))
    assert mcmc.get_samples()["loc"].shape == (20,)
    assert kernel.inverse_mass_matrix[("loc", "scale")].shape == (2, 2)

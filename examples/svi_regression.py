"""Bayesian linear regression with SVI, an AutoNormal guide and Predictive.

Run with ``python examples/svi_regression.py``. The program is plain Pyro: swap
``import ember as pyro`` for ``import pyro`` and it runs on pyro-ppl.
"""

from __future__ import annotations

import torch

import ember as pyro
import ember.distributions as dist
from ember.infer import SVI, Predictive, Trace_ELBO
from ember.infer.autoguide import AutoNormal

TRUE_INTERCEPT, TRUE_SLOPE, TRUE_NOISE = 1.5, -2.0, 0.5


def make_data(num_points: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on a noisy line with the true coefficients above."""
    x = torch.randn(num_points)
    y = TRUE_INTERCEPT + TRUE_SLOPE * x + TRUE_NOISE * torch.randn(num_points)
    return x, y


def model(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """y ~ Normal(intercept + slope * x, noise), with weak priors on the three globals."""
    intercept = pyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = pyro.sample("slope", dist.Normal(0.0, 10.0))
    noise = pyro.sample("noise", dist.HalfNormal(5.0))
    mean = intercept + slope * x
    with pyro.plate("data", len(x)):
        return pyro.sample("y", dist.Normal(mean, noise), obs=y)


def fit(x: torch.Tensor, y: torch.Tensor, num_steps: int = 1500) -> AutoNormal:
    """Fit an AutoNormal guide by SVI and return it."""
    guide = AutoNormal(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.03}), loss=Trace_ELBO())
    for step in range(num_steps):
        loss = svi.step(x, y)
        if step % 500 == 0:
            print(f"step {step:4d}  loss {loss:10.2f}")
    return guide


def main() -> None:
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    x, y = make_data()
    guide = fit(x, y)

    median = guide.median()
    print("\ncoefficient   fitted   true")
    for name, true in (("intercept", TRUE_INTERCEPT), ("slope", TRUE_SLOPE), ("noise", TRUE_NOISE)):
        print(f"{name:<11} {float(median[name]):8.3f} {true:6.2f}")

    x_new = torch.tensor([-1.0, 0.0, 1.0])
    predictive = Predictive(model, guide=guide, num_samples=500)
    samples = predictive(x_new)
    mean, std = samples["y"].mean(0), samples["y"].std(0)
    print("\nposterior predictive at x = -1, 0, 1:")
    for xi, m, s in zip(x_new.tolist(), mean.tolist(), std.tolist()):
        print(f"  x = {xi:4.1f}: y = {m:6.3f} +- {s:.3f}  (true mean {TRUE_INTERCEPT + TRUE_SLOPE * xi:6.3f})")


if __name__ == "__main__":
    main()

"""Tests for ember.infer.autoguide.normalizing_flow: flow posteriors fit a banana.

The target is ``x ~ N(0, 1)``, ``y ~ N(B x^2, S)`` with no data, so the evidence is one and the
negative ELBO is exactly ``KL(q || p)``. The best *mean-field* Gaussian has
``KL = -log(u)/2 - 1/2 + u/2 + (B/S)^2 u^2`` with ``u = s_x^2`` the positive root of
``4 (B/S)^2 u^2 + u - 1 = 0`` (0.318 nats for ``B = S = 1/2``): a flow fits when its KL,
estimated from 4,000 of its own samples, is below half of that by four standard errors, and its
samples show the banana (the slope of ``y`` on ``x^2`` is above ``B / 2``; a mean-field
Gaussian's is zero).
"""

from __future__ import annotations

import functools
import importlib
import math
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions.transforms import block_autoregressive, iterated
from ember.infer.autoguide import AutoIAFNormal, AutoNormalizingFlow
from tests.infer.autoguide._models import elbo_loss, fit

B, S = 0.5, 0.5
PARTICLES = 64


def banana() -> None:
    x = ember.sample("x", dist.Normal(0.0, 1.0))
    ember.sample("y", dist.Normal(B * x**2, S))


def _mean_field_optimum() -> float:
    r = (B / S) ** 2
    u = (-1 + math.sqrt(1 + 16 * r)) / (8 * r)
    return -0.5 * math.log(u) - 0.5 + u / 2 + r * u**2


def _vectorized_loss(guide: Any) -> torch.Tensor:
    with ember.plate("particles", PARTICLES, dim=-1):
        loss: torch.Tensor = elbo_loss(banana, guide) / PARTICLES
        return loss


def _kl_and_slope(guide: Any, n: int = 4000) -> tuple[float, float, float]:
    with torch.no_grad(), ember.plate("particles", n, dim=-1):
        guide_trace = poutine.trace(guide).get_trace()
        model_trace = poutine.trace(poutine.replay(banana, trace=guide_trace)).get_trace()

    def log_density(trace: Any) -> torch.Tensor:
        terms = [site["fn"].log_prob(site["value"]) for site in trace.nodes.values() if site["type"] == "sample"]
        return torch.stack(terms).sum(0)

    gap = log_density(guide_trace) - log_density(model_trace)
    x, y = guide_trace.nodes["x"]["value"], guide_trace.nodes["y"]["value"]
    features = torch.stack([torch.ones_like(x), x**2], dim=-1)
    slope = torch.linalg.lstsq(features, y.unsqueeze(-1)).solution[1, 0]
    return gap.mean().item(), (gap.std() / n**0.5).item(), slope.item()


def _assert_fits_the_banana(guide: Any) -> None:
    kl, standard_error, slope = _kl_and_slope(guide)
    assert kl + 4 * standard_error < _mean_field_optimum() / 2, (kl, standard_error)
    assert slope > B / 2, slope


def test_the_mean_field_optimum_is_what_the_docstring_says() -> None:
    assert _mean_field_optimum() == pytest.approx(0.318, abs=1e-3)


def test_iaf_fits_the_banana() -> None:
    guide = AutoIAFNormal(banana, hidden_dim=[16], num_transforms=2)
    ember.set_rng_seed(4)  # the last flow orders x before y, so y | x is exactly representable
    guide()
    flow: Any = guide.transform
    assert [part.arn.permutation.tolist() for part in flow.parts] == [[1, 0], [0, 1]]
    fit(guide, lambda: _vectorized_loss(guide), steps=80)
    _assert_fits_the_banana(guide)


def test_block_autoregressive_flow_fits_the_banana() -> None:
    guide = AutoNormalizingFlow(banana, functools.partial(iterated, 1, block_autoregressive))
    guide()
    fit(guide, lambda: _vectorized_loss(guide), steps=160)
    _assert_fits_the_banana(guide)


def test_param_names_and_posterior_as_pyro() -> None:
    guide = AutoIAFNormal(banana, num_transforms=2)
    guide()
    pyro: Any = importlib.import_module("pyro")
    pyro_dist: Any = importlib.import_module("pyro.distributions")
    pyro_autoguide: Any = importlib.import_module("pyro.infer.autoguide")

    def pyro_banana() -> None:
        x = pyro.sample("x", pyro_dist.Normal(0.0, 1.0))
        pyro.sample("y", pyro_dist.Normal(B * x**2, S))

    theirs = pyro_autoguide.AutoIAFNormal(pyro_banana, num_transforms=2)
    theirs()
    assert list(ember.get_param_store()) == list(pyro.get_param_store())
    flow: Any = guide.transform
    theirs.transform.load_state_dict(flow.state_dict())
    z = torch.randn(5, 2)
    assert torch.allclose(guide.get_posterior().log_prob(z), theirs.get_posterior().log_prob(z), atol=1e-5)


def test_iaf_warns_about_init_loc_fn_and_passes_flow_options() -> None:
    with pytest.warns(FutureWarning, match="The `init_loc_fn` argument to AutoIAFNormal is not used in practice"):
        guide = AutoIAFNormal(banana, init_loc_fn=lambda site: torch.tensor(0.0), stable=True)
    guide()
    flow: Any = guide.transform
    assert flow.parts[0].stable and flow.parts[0].arn.hidden_dims == [7]

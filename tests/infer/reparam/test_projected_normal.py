"""Tests for ProjectedNormalReparam (ember/infer/reparam/projected_normal.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.reparam import ProjectedNormalReparam


def _model() -> torch.Tensor:
    with ember.plate("p", 4):
        x: torch.Tensor = ember.sample("x", dist.ProjectedNormal(torch.tensor([0.0, 1.0, 2.0])))
    return x


def test_site_becomes_normalized_auxiliary_normal() -> None:
    reparameterized = poutine.reparam(_model, {"x": ProjectedNormalReparam()})
    trace = poutine.trace(reparameterized).get_trace()
    z = trace.nodes["x_normal"]["value"]
    x = trace.nodes["x"]["value"]
    assert z.shape == (4, 3) and x.shape == (4, 3)
    expected = z + torch.tensor([0.0, 1.0, 2.0])
    assert torch.allclose(x, expected / expected.norm(dim=-1, keepdim=True))
    aux: Any = trace.nodes["x_normal"]["fn"]
    assert aux.event_shape == (3,) and aux.batch_shape == (4,)
    assert trace.nodes["x"]["is_observed"]
    trace.compute_log_prob()
    assert torch.equal(trace.nodes["x"]["log_prob"], torch.zeros(4))


def test_reparameterized_samples_have_the_projected_normal_distribution() -> None:
    def model() -> torch.Tensor:
        with ember.plate("p", 20000):
            x: torch.Tensor = ember.sample("x", dist.ProjectedNormal(torch.tensor([0.0, 1.0, 2.0])))
        return x

    x = poutine.reparam(model, {"x": ProjectedNormalReparam()})()
    y = dist.ProjectedNormal(torch.tensor([0.0, 1.0, 2.0])).sample((20000,))
    assert torch.allclose(x.mean(0), y.mean(0), atol=0.03)


def test_observed_site_is_not_supported() -> None:
    def model() -> None:
        ember.sample("x", dist.ProjectedNormal(torch.ones(3)), obs=torch.tensor([1.0, 0.0, 0.0]))

    with pytest.raises(NotImplementedError, match="observe"):
        poutine.reparam(model, {"x": ProjectedNormalReparam()})()


def test_other_distributions_are_rejected_with_the_site_name() -> None:
    def model() -> None:
        ember.sample("y", dist.Normal(0.0, 1.0))

    with pytest.raises(TypeError, match="'y'.*ProjectedNormal"):
        poutine.reparam(model, {"y": ProjectedNormalReparam()})()

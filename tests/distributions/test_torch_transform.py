"""Tests for ember.distributions.torch_transform (transforms that are modules)."""

from __future__ import annotations

from typing import Any

import torch

import ember.distributions as dist
from ember.distributions.torch_transform import ComposeTransformModule, TransformModule
from ember.distributions.transforms import ExpTransform, Planar, Spline


def test_a_transform_module_hashes_by_identity_and_has_module_state() -> None:
    flow = Spline(2)
    assert isinstance(flow, TransformModule) and isinstance(flow, torch.nn.Module)
    assert hash(flow) != hash(Spline(2)) and flow == flow and flow != Spline(2)
    assert {name for name, _ in flow.named_parameters()} == {
        "unnormalized_widths",
        "unnormalized_heights",
        "unnormalized_derivatives",
        "unnormalized_lambdas",
    }
    assert flow.training and not flow.eval().training


def test_compose_transform_module_registers_only_module_parts() -> None:
    flow = ComposeTransformModule([Planar(2), ExpTransform(), Planar(2)])
    assert len(flow) == 2 and len(list(flow.parameters())) == 6
    x = torch.randn(3, 2)
    y = flow(x)
    assert torch.allclose(y, flow.parts[2](flow.parts[1](flow.parts[0](x))))
    cached = flow.with_cache(1)
    assert cached is not flow and cached._cache_size == 1 and flow.with_cache(0) is flow
    assert hash(flow) != hash(cached)


def test_a_compose_module_inside_a_transformed_distribution() -> None:
    flow = ComposeTransformModule([Planar(2), Planar(2)])
    base: Any = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    d = dist.TransformedDistribution(base, flow)
    value = d.rsample(torch.Size([5]))
    torch.autograd.backward(d.log_prob(value).sum())
    assert all(p.grad is not None for p in flow.parameters())

"""Tests for ember.distributions.conditional (context-indexed distributions and transforms)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions.conditional import (
    ConditionalComposeTransformModule,
    ConditionalDistribution,
    ConditionalTransform,
    ConditionalTransformedDistribution,
    ConditionalTransformModule,
)
from ember.distributions.transforms import ExpTransform, conditional_affine_coupling, conditional_planar

pyro_dist: Any = importlib.import_module("pyro.distributions")


def test_conditioning_builds_a_transformed_distribution_matching_pyro() -> None:
    base: Any = dist.Normal(torch.zeros(3), 1.0).to_event(1)
    flow = conditional_affine_coupling(3, context_dim=2)
    ours = ConditionalTransformedDistribution(base, [flow, ExpTransform()])
    theirs_flow = pyro_dist.transforms.conditional_affine_coupling(3, context_dim=2)
    theirs_flow.load_state_dict(flow.state_dict())
    theirs = pyro_dist.ConditionalTransformedDistribution(pyro_dist.Normal(torch.zeros(3), 1.0).to_event(1), [theirs_flow, pyro_dist.transforms.ExpTransform()])
    context = torch.randn(4, 2)
    conditioned = ours.condition(context)
    assert isinstance(conditioned, dist.TransformedDistribution)
    value = torch.rand(4, 3) + 0.1
    assert torch.allclose(conditioned.log_prob(value), theirs.condition(context).log_prob(value), atol=1e-5)
    assert conditioned.rsample(torch.Size([4])).shape == (4, 3)


def test_the_conditional_inverse_conditions_then_inverts() -> None:
    flow = conditional_planar(2, context_dim=1)
    context = torch.ones(1)
    inverse = flow.inv
    assert isinstance(inverse, ConditionalTransformModule) and inverse.inv is flow
    conditioned = flow.condition(context)
    assert type(inverse.condition(context)).__name__ == "_InverseTransform"
    assert inverse.condition(context).inv.domain is conditioned.domain


def test_conditional_compose_conditions_every_part_and_registers_modules() -> None:
    planar = conditional_planar(2, context_dim=1)
    compose = ConditionalComposeTransformModule([planar, ExpTransform()], cache_size=1)
    assert len(list(compose.parameters())) == len(list(planar.parameters()))
    conditioned = compose.condition(torch.zeros(1))
    assert conditioned._cache_size == 1 and isinstance(conditioned.parts[1], ExpTransform)
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        ConditionalComposeTransformModule([planar], cache_size=2)


def test_abstract_bases_cannot_be_instantiated() -> None:
    for cls in (ConditionalDistribution, ConditionalTransform):
        with pytest.raises(TypeError):
            cls()  # type: ignore[abstract]
    assert pyro_dist.ConditionalTransformModule.__name__ == ConditionalTransformModule.__name__

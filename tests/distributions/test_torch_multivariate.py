"""Tests for the vector- and matrix-valued distributions (torch_multivariate.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")


@pytest.mark.parametrize(
    "shapes",
    [
        {"loc": (3,), "covariance_matrix": (3, 3)},
        {"loc": (2, 1, 3), "scale_tril": (4, 3, 3)},
        {"loc": (5, 3), "precision_matrix": (3, 3)},
    ],
)
def test_multivariate_normal_infer_shapes_matches_pyro(shapes: dict[str, tuple[int, ...]]) -> None:
    ours = dist.MultivariateNormal.infer_shapes(**shapes)
    theirs = pyro_dist.MultivariateNormal.infer_shapes(**shapes)
    assert ours == (tuple(theirs[0]), tuple(theirs[1]))
    assert isinstance(ours[0], torch.Size) and isinstance(ours[1], torch.Size)


def test_multivariate_normal_infer_shapes_agrees_with_construction() -> None:
    loc, scale_tril = torch.zeros(2, 1, 3), torch.eye(3).expand(4, 3, 3)
    d = dist.MultivariateNormal(loc, scale_tril=scale_tril)
    assert dist.MultivariateNormal.infer_shapes(loc=loc.shape, scale_tril=scale_tril.shape) == (
        d.batch_shape,
        d.event_shape,
    )


def test_low_rank_multivariate_normal_infer_shapes_matches_pyro() -> None:
    shapes = {"loc": (2, 1, 3), "cov_factor": (4, 3, 2), "cov_diag": (3,)}
    ours = dist.LowRankMultivariateNormal.infer_shapes(**shapes)
    assert ours == ((2, 4), (3,))
    assert ours == pyro_dist.LowRankMultivariateNormal.infer_shapes(**shapes)


def test_dirichlet_infer_shapes_matches_pyro() -> None:
    assert dist.Dirichlet.infer_shapes(concentration=(5, 4)) == ((5,), (4,))
    assert dist.Dirichlet.infer_shapes(concentration=(5, 4)) == pyro_dist.Dirichlet.infer_shapes(
        concentration=(5, 4)
    )


@pytest.mark.parametrize("name", ["LKJCholesky", "Wishart", "LogisticNormal", "MixtureSameFamily"])
def test_infer_shapes_not_available_for_structured_events(name: str) -> None:
    with pytest.raises(NotImplementedError):
        getattr(dist, name).infer_shapes(loc=(2,))


def test_multivariate_normal_to_event_and_mask_shapes() -> None:
    d = dist.MultivariateNormal(torch.zeros(4, 3), torch.eye(3))
    x = d.sample()
    masked = d.mask(torch.tensor([True, False, True, False]))
    lp = masked.log_prob(x)
    assert lp.shape == (4,) and lp[1] == 0 and lp[3] == 0
    assert d.to_event(1).log_prob(x).shape == ()
    assert torch.allclose(d.to_event(1).log_prob(x), d.log_prob(x).sum())


def test_mixture_same_family_components_are_ember_distributions() -> None:
    mixture = dist.MixtureSameFamily(
        dist.Categorical(torch.ones(2) / 2), dist.Normal(torch.tensor([-1.0, 1.0]), 1.0)
    )
    expanded = mixture.expand([3])
    assert type(expanded) is dist.MixtureSameFamily
    assert isinstance(expanded.component_distribution, dist.Normal)
    assert expanded.log_prob(torch.zeros(3)).shape == (3,)

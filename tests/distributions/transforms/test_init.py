"""Tests for ember.distributions.transforms and the biject_to/transform_to registrations."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import ember.distributions as dist
from ember.distributions import constraints, transforms

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")
# torch leaves the autograd jacobian unannotated.
jacobian_of: Any = torch.autograd.functional.jacobian


def test_every_torch_transform_is_re_exported_unchanged() -> None:
    for name in torch.distributions.transforms.__all__:
        assert name in transforms.__all__
        assert getattr(transforms, name) is getattr(torch.distributions.transforms, name)
    for name in transforms.__all__:
        assert hasattr(transforms, name)


def test_biject_to_and_transform_to_are_torchs() -> None:
    assert dist.biject_to is torch.distributions.biject_to
    assert dist.transform_to is torch.distributions.transform_to


@pytest.mark.parametrize(
    ("name", "size"),
    [("ordered_vector", 4), ("positive_ordered_vector", 4), ("softplus_positive", 4), ("corr_matrix", 6)],
)
@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
def test_bijections_round_trip_and_land_in_the_constraint(name: str, size: int, registry: str) -> None:
    constraint = getattr(constraints, name)
    transform = getattr(dist, registry)(constraint)
    torch.manual_seed(0)
    x = torch.randn(5, size, dtype=torch.float64)
    y = transform(x)
    assert constraint.check(y).all()
    torch.testing.assert_close(transform.inv(y), x)
    assert transform.bijective


@pytest.mark.parametrize("name", ["ordered_vector", "positive_ordered_vector"])
def test_vector_log_abs_det_jacobian_matches_autograd(name: str) -> None:
    transform = dist.biject_to(getattr(constraints, name))
    torch.manual_seed(0)
    x = torch.randn(4, dtype=torch.float64)
    jacobian = jacobian_of(transform, x)
    expected = torch.linalg.slogdet(jacobian).logabsdet
    torch.testing.assert_close(transform.log_abs_det_jacobian(x, transform(x)), expected)


def test_corr_matrix_log_abs_det_jacobian_matches_autograd_over_free_entries() -> None:
    size = 4
    rows, cols = torch.tril_indices(size, size, -1)
    torch.manual_seed(0)
    x = torch.randn(size * (size - 1) // 2, dtype=torch.float64)
    transform = dist.biject_to(constraints.corr_matrix)

    def free_entries(v: torch.Tensor) -> torch.Tensor:
        matrix: torch.Tensor = transform(v)
        return matrix[rows, cols]

    jacobian = jacobian_of(free_entries, x)
    expected = torch.linalg.slogdet(jacobian).logabsdet
    torch.testing.assert_close(transform.log_abs_det_jacobian(x, transform(x)), expected)


def test_corr_matrix_transform_matches_pyro() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 6)
    ours = dist.biject_to(constraints.corr_matrix)
    theirs = torch.distributions.biject_to(pyro_dist.constraints.corr_matrix)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(
        ours.log_abs_det_jacobian(x, ours(x)), theirs.log_abs_det_jacobian(x, theirs(x))
    )


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("ordered_vector", (3, 4)),
        ("softplus_lower_cholesky", (2, 3, 3)),
        ("unit_lower_cholesky", (2, 3, 3)),
        ("sphere", (5, 3)),
        ("softplus_positive", (4,)),
    ],
)
def test_transform_to_matches_pyro(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape)
    ours = dist.transform_to(getattr(constraints, name))
    theirs = torch.distributions.transform_to(getattr(pyro_dist.constraints, name))
    y = ours(x)
    torch.testing.assert_close(y, theirs(x))
    assert getattr(constraints, name).check(y).all()
    torch.testing.assert_close(ours(ours.inv(y)), y)


@pytest.mark.parametrize("name", ["softplus_lower_cholesky", "unit_lower_cholesky", "sphere"])
def test_surjections_are_not_registered_with_biject_to(name: str) -> None:
    with pytest.raises(NotImplementedError):
        dist.biject_to(getattr(constraints, name))


def test_transforms_are_equal_by_type() -> None:
    assert transforms.OrderedTransform() == transforms.OrderedTransform()
    assert transforms.OrderedTransform() != transforms.Normalize()
    assert len({transforms.Normalize(), transforms.Normalize()}) == 1


def test_unconstrained_parameter_optimization_through_transform_to() -> None:
    raw = torch.zeros(3, requires_grad=True)
    value = dist.transform_to(constraints.ordered_vector)(raw)
    (grad,) = torch.autograd.grad(value.sum(), [raw])
    assert torch.equal(grad, torch.tensor([3.0, 2.0, 1.0]))


def test_every_public_name_of_pyros_transforms_has_an_ember_counterpart() -> None:
    import types

    pyro_transforms: Any = importlib.import_module("pyro.distributions.transforms")
    public = [n for n in dir(pyro_transforms) if not n.startswith("_")]
    missing = [n for n in public if not isinstance(getattr(pyro_transforms, n), types.ModuleType) and not hasattr(transforms, n)]
    assert missing == []
    assert sorted(set(pyro_transforms.__all__) - set(transforms.__all__)) == []


def test_iterated_composes_independent_modules() -> None:
    flow = transforms.iterated(3, transforms.planar, 2)
    assert isinstance(flow, transforms.ComposeTransformModule) and len(flow.parts) == 3
    parts: list[Any] = list(flow.parts)
    assert len({id(p.u) for p in parts}) == 3
    assert len(list(flow.parameters())) == 9
    x = torch.randn(4, 2)
    y = flow(x)
    expected = x
    log_det = torch.zeros(4)
    for part in parts:
        out = part(expected)
        log_det = log_det + part.log_abs_det_jacobian(expected, out)
        expected = out
    composed: Any = flow
    assert torch.allclose(y, expected) and torch.allclose(composed.log_abs_det_jacobian(x, y), log_det)

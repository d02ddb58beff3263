"""Shared checks for the transform tests: autograd Jacobians and parity with pyro-ppl."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

# pyro-ppl is an unannotated test oracle.
pyro_transforms: Any = importlib.import_module("pyro.distributions.transforms")
pyro_nn: Any = importlib.import_module("pyro.nn")
# torch leaves the autograd jacobian unannotated.
jacobian_of: Any = torch.autograd.functional.jacobian


def autograd_log_det(transform: Any, x: torch.Tensor, event_dim: int) -> torch.Tensor:
    """``log|det dy/dx|`` per batch element by autograd (elementwise slopes when ``event_dim == 0``)."""
    if event_dim == 0:  # elementwise: the Jacobian is diagonal, one backward pass gives it
        leaf = x.detach().clone().requires_grad_()
        (slopes,) = torch.autograd.grad(transform(leaf).sum(), [leaf])
        return slopes.abs().log()
    event_shape = x.shape[x.dim() - event_dim :]
    batch = x.reshape((-1,) + event_shape)
    size = event_shape.numel()
    log_dets = []
    for value in batch:
        jac = jacobian_of(lambda v: transform(v.unsqueeze(0)).squeeze(0), value).reshape(size, size)
        log_dets.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(log_dets).reshape(x.shape[: x.dim() - event_dim])


def assert_log_det_matches_autograd(transform: Any, x: torch.Tensor, atol: float = 1e-6) -> None:
    """The transform's ``log_abs_det_jacobian`` equals autograd's, for each batch element."""
    y = transform(x)
    expected = autograd_log_det(transform, x, transform.domain.event_dim)
    actual = transform.log_abs_det_jacobian(x, y)
    assert torch.allclose(actual.expand(expected.shape), expected, atol=atol), (actual, expected)


def assert_round_trip(transform: Any, x: torch.Tensor, atol: float = 1e-6) -> None:
    """``inv(t(x)) == x`` without the cache (a fresh copy of ``y``), and ``t(inv(y)) == y``."""
    y = transform(x).detach().clone()
    x_back = transform.inv(y)
    assert torch.allclose(x_back, x, atol=atol), (x_back, x)
    assert torch.allclose(transform(x_back.detach().clone()), y, atol=atol)


def copy_parameters(ours: Any, theirs: Any) -> None:
    """Give our module pyro-ppl's parameters and buffers (the same state dict, strictly)."""
    ours.load_state_dict(theirs.state_dict(), strict=True)


def assert_pyro_parity(ours: Any, theirs: Any, x: torch.Tensor, invertible: bool = True, atol: float = 1e-6) -> None:
    """Same outputs, log-Jacobians and (when invertible) inverses as pyro-ppl's transform."""
    if isinstance(theirs, torch.nn.Module):
        copy_parameters(ours, theirs)
    y_ours, y_theirs = ours(x), theirs(x)
    assert torch.allclose(y_ours, y_theirs, atol=atol), (y_ours, y_theirs)
    log_det_ours = ours.log_abs_det_jacobian(x, y_ours)
    log_det_theirs = theirs.log_abs_det_jacobian(x, y_theirs)
    assert log_det_ours.shape == log_det_theirs.shape
    assert torch.allclose(log_det_ours, log_det_theirs, atol=atol)
    if invertible:
        y = y_theirs.detach().clone()
        assert torch.allclose(ours.inv(y), theirs.inv(y.clone()), atol=atol * 10)


def _constraint_key(constraint: Any) -> tuple[str, int]:
    base = constraint
    while hasattr(base, "base_constraint"):
        base = base.base_constraint
    return type(base).__name__, constraint.event_dim


def _sign(transform: Any) -> int | None:
    try:
        return int(transform.sign)
    except NotImplementedError:
        return None


def assert_same_declarations(ours: Any, theirs: Any) -> None:
    """Same ``bijective``, ``sign``, cache size, event dims and domain/codomain kinds as pyro-ppl's."""
    assert ours.bijective == theirs.bijective
    assert _sign(ours) == _sign(theirs)
    assert ours._cache_size == theirs._cache_size
    assert ours.event_dim == theirs.event_dim
    assert _constraint_key(ours.domain) == _constraint_key(theirs.domain)
    assert _constraint_key(ours.codomain) == _constraint_key(theirs.codomain)


def assert_cached_inverse_is_identity(transform: Any, x: torch.Tensor) -> None:
    """With a one-slot cache, ``t.inv(t(x))`` returns ``x`` itself (how flows without inverse score samples)."""
    y = transform(x)
    assert transform.inv(y) is x


def assert_matches_pyro_and_only_cached_values_invert(ours: Any, theirs: Any, x: torch.Tensor) -> None:
    """Parity and declarations as pyro-ppl's flow without an inverse; a value not cached raises KeyError."""
    assert_pyro_parity(ours, theirs, x, invertible=False)
    assert_same_declarations(ours, theirs)
    assert_cached_inverse_is_identity(ours, x)
    with pytest.raises(KeyError, match=f"{type(ours).__name__} object expected to find key in intermediates cache"):
        ours.inv(torch.randn_like(x))


def assert_conditioned_matches_pyro(ours: Any, theirs: Any, context: torch.Tensor, x: torch.Tensor) -> None:
    """With pyro-ppl's network weights, ``condition(context)`` is pyro-ppl's flow (inverse not compared)."""
    ours.load_state_dict(theirs.state_dict())
    assert_pyro_parity(ours.condition(context), theirs.condition(context), x, invertible=False)

"""Newton steps: exact on quadratics, trust regions respected, parity with pyro.ops.newton."""

from __future__ import annotations

from typing import Any, Callable

import pyro.ops.newton as _pyro_newton
import pytest
import torch

from ember.ops.newton import newton_step, newton_step_1d, newton_step_2d, newton_step_3d

pyro_newton: Any = _pyro_newton  # pyro-ppl is untyped: the oracle's calls are unchecked


def _quadratic(dim: int) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    generator = torch.Generator().manual_seed(dim)
    a = torch.randn(4, dim, dim, generator=generator, dtype=torch.float64)
    precision = a @ a.transpose(-1, -2) + torch.eye(dim, dtype=torch.float64)
    center = torch.randn(4, dim, generator=generator, dtype=torch.float64)

    def loss(x: torch.Tensor) -> torch.Tensor:
        d = x - center
        return 0.5 * torch.einsum("bi,bij,bj->", d, precision, d)

    return precision, center, loss


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_one_step_reaches_the_minimum_of_a_quadratic_with_inverse_hessian_cov(dim: int) -> None:
    precision, center, loss = _quadratic(dim)
    x = torch.zeros(4, dim, dtype=torch.float64, requires_grad=True)
    mode, cov = newton_step(loss(x), x)
    assert torch.allclose(mode, center, atol=1e-8)
    assert cov.shape == (4, dim, dim)
    assert torch.allclose(cov, torch.linalg.inv(precision), atol=1e-8)


@pytest.mark.parametrize(("dim", "step"), [(1, newton_step_1d), (2, newton_step_2d), (3, newton_step_3d)])
@pytest.mark.parametrize("trust_radius", [None, 0.5])
def test_newton_steps_match_pyro_on_a_non_quadratic_loss(
    dim: int, step: Callable[..., tuple[torch.Tensor, torch.Tensor]], trust_radius: float | None
) -> None:
    x0 = torch.randn(5, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(7))

    def loss(x: torch.Tensor) -> torch.Tensor:
        return ((x - 1).pow(4) + (x * x.roll(1, -1)).cosh() + x.pow(2)).sum()

    x = x0.clone().requires_grad_()
    mode, cov = step(loss(x), x, trust_radius)
    y = x0.clone().requires_grad_()
    pyro_step = getattr(pyro_newton, step.__name__)
    expected_mode, expected_cov = pyro_step(loss(y), y, trust_radius)
    assert torch.allclose(mode, expected_mode, atol=1e-8)
    assert torch.allclose(cov, expected_cov, atol=1e-8)
    if trust_radius is not None:
        assert ((mode - x0).norm(dim=-1) <= trust_radius + 1e-6).all()


def test_newton_mode_stays_differentiable_in_the_loss_parameters() -> None:
    center = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.zeros(1, 2, requires_grad=True)
    mode, _ = newton_step(((x - center) ** 2).sum(), x)
    (grad,) = torch.autograd.grad(mode.sum(), [center])
    assert torch.allclose(grad, torch.ones(2))


def test_newton_step_rejects_bad_shapes() -> None:
    x = torch.zeros(3, 4, requires_grad=True)
    with pytest.raises(NotImplementedError, match="newton_step_nd"):
        newton_step((x**2).sum(), x)
    with pytest.raises(ValueError, match="at least one dimension"):
        newton_step(torch.tensor(0.0), torch.tensor(0.0))
    y = torch.zeros(3, 2, requires_grad=True)
    with pytest.raises(ValueError, match="loss to be a scalar"):
        newton_step_2d(y**2, y)
    with pytest.raises(ValueError, match="rightmost size 3"):
        newton_step_3d((y**2).sum(), y)

"""``DCTAdam``: clipped Adam that also works in the frequency domain along a time dim.

A parameter marked with ``._pyro_dct_dim = dim`` (a negative dim) gets its gradient
augmented with the gradient's discrete cosine transform along that dim (zero-padded to a
length with only the prime factors 2, 3, 5), and Adam's moments are kept for both halves.
The step maps the frequency half back and adds the two. Smooth time series then move in a
few large frequency components instead of many small time components.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.nn.functional import pad
from torch.optim.optimizer import Optimizer, ParamsT

__all__ = ["DCTAdam"]


def _next_fast_len(size: int) -> int:
    """The smallest ``n >= size`` whose only prime factors are 2, 3 and 5."""
    assert isinstance(size, int) and size > 0
    while True:
        remaining = size
        for factor in (2, 3, 5):
            while remaining % factor == 0:
                remaining //= factor
        if remaining == 1:
            return size
        size += 1


def _dct_matrix(size: int, like: torch.Tensor) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``C``: ``dct(x) = x @ C.T``, ``idct(y) = y @ C``."""
    n = torch.arange(size, dtype=like.dtype, device=like.device)
    matrix = torch.cos(math.pi / size * (n + 0.5) * n[:, None])
    matrix[0] *= math.sqrt(1.0 / size)
    matrix[1:] *= math.sqrt(2.0 / size)
    return matrix


def _along(x: torch.Tensor, dim: int, matrix: torch.Tensor) -> torch.Tensor:
    """``x`` with ``matrix`` applied to the vectors along ``dim``."""
    return (x.movedim(dim, -1) @ matrix).movedim(-1, dim)


def _transform_forward(x: torch.Tensor, dim: int, duration: int) -> torch.Tensor:
    """``x`` followed, along ``dim``, by the DCT of ``x`` zero-padded to a fast length."""
    assert not x.requires_grad and dim < 0 and duration == x.size(dim)
    size = _next_fast_len(duration)
    freq = x if size == duration else pad(x, (0, 0) * (-1 - dim) + (0, size - duration))
    freq = _along(freq, dim, _dct_matrix(size, x).T)
    return torch.cat([x, freq], dim=dim)


def _transform_inverse(x: torch.Tensor, dim: int, duration: int) -> torch.Tensor:
    """The time half of ``x`` plus the inverse DCT of its frequency half, cut to ``duration``."""
    assert not x.requires_grad and dim < 0
    dots = (slice(None),) * (x.dim() + dim)
    time, freq = x[dots + (slice(None, duration),)], x[dots + (slice(duration, None),)]
    back = _along(freq, dim, _dct_matrix(freq.size(dim), x))
    return back[dots + (slice(None, duration),)].add_(time)


def _subsample_mask(x: torch.Tensor, indices: dict[int, torch.Tensor]) -> torch.Tensor:
    """Where ``x`` is selected by every ``{dim: index}`` of a subsample (all of it if none)."""
    hits = torch.zeros(x.shape, dtype=torch.long, device=x.device)
    if indices:
        prefix: list[Any] = []
        for dim in range(-x.dim(), 0):
            if dim in indices:
                hits[tuple(prefix + [indices[dim]])] += 1
            prefix.append(slice(None))
    return hits == len(indices)


class DCTAdam(Optimizer):
    """Clipped Adam with a second, frequency-domain optimizer along each parameter's
    ``._pyro_dct_dim`` (experimental, as in Pyro).

    Parameters without that attribute are stepped as by
    :class:`~ember.optim.clipped_adam.ClippedAdam`. With ``subsample_aware``, a parameter
    carrying ``._pyro_subsample = {dim: indices}`` updates only the selected elements and
    their moments (with a per-element step count).

    :param params: the parameters (or parameter groups) to optimize.
    :param lr: the learning rate.
    :param betas: decay rates of the running averages of the gradient and its square.
    :param eps: added to the denominator for numerical stability.
    :param clip_norm: the bound gradients are clamped to, elementwise.
    :param lrd: the learning rate decay factor applied at every step.
    :param subsample_aware: update only the subsampled elements.

    >>> p = torch.nn.Parameter(torch.zeros(5))
    >>> p._pyro_dct_dim = -1
    >>> opt = DCTAdam([p], lr=0.1)
    >>> p.grad = torch.ones(5)
    >>> _ = opt.step()
    >>> bool((p < 0).all())
    True
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        clip_norm: float = 10.0,
        lrd: float = 1.0,
        subsample_aware: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, clip_norm=clip_norm, lrd=lrd, subsample_aware=subsample_aware)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]  # torch's overloads allow a closure returning a tensor
        """One step of every parameter that has a gradient.

        :param closure: re-evaluates the model and returns the loss.
        """
        loss = None if closure is None else closure()
        for group in self.param_groups:
            group["lr"] *= group["lrd"]
            params: Iterable[torch.Tensor] = group["params"]
            for p in params:
                if p.grad is None:
                    continue
                subsample = getattr(p, "_pyro_subsample", {})
                if subsample and group["subsample_aware"]:
                    self._step_param_subsample(group, p, subsample)
                else:
                    self._step_param(group, p)
        return loss

    def _step_param(self, group: dict[str, Any], p: torch.Tensor) -> None:
        assert p.grad is not None
        grad = p.grad.data.clamp(-group["clip_norm"], group["clip_norm"])
        time_dim: int | None = getattr(p, "_pyro_dct_dim", None)
        duration = 0
        if time_dim is not None:
            duration = p.size(time_dim)
            grad = _transform_forward(grad, time_dim, duration)
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(grad)
            state["exp_avg_sq"] = torch.zeros_like(grad)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.sqrt().add_(group["eps"])
        step_size = group["lr"] * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
        if time_dim is None:
            p.data.addcdiv_(exp_avg, denom, value=-step_size)
        else:
            p.data.add_(_transform_inverse(exp_avg / denom, time_dim, duration).mul_(-step_size))

    def _step_param_subsample(self, group: dict[str, Any], p: torch.Tensor, subsample: dict[int, torch.Tensor]) -> None:
        assert p.grad is not None
        mask = _subsample_mask(p, subsample)
        grad = p.grad.data.masked_select(mask).clamp_(-group["clip_norm"], group["clip_norm"])
        time_dim: int | None = getattr(p, "_pyro_dct_dim", None)
        duration = 0
        if time_dim is not None:
            duration = p.size(time_dim)
            grad = _transform_forward(grad, time_dim, duration)
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros_like(p)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        steps = state["step"].masked_select(mask).add_(1)
        state["step"].masked_scatter_(mask, steps)
        exp_avg = state["exp_avg"].masked_select(mask).mul_(beta1).add_(grad, alpha=1 - beta1)
        state["exp_avg"].masked_scatter_(mask, exp_avg)
        exp_avg_sq = state["exp_avg_sq"].masked_select(mask).mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        state["exp_avg_sq"].masked_scatter_(mask, exp_avg_sq)
        denom = exp_avg_sq.sqrt_().add_(group["eps"])
        step_size = (1 - beta2**steps).sqrt_().div_(1 - beta1**steps).mul_(group["lr"])
        step = exp_avg.div_(denom)
        if time_dim is not None:
            step = _transform_inverse(step, time_dim, duration)
        p.data.masked_scatter_(mask, p.data.masked_select(mask).sub_(step.mul_(step_size)))

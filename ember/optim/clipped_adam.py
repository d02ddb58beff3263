"""``ClippedAdam``: Adam with elementwise gradient clipping and a decaying learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, ParamsT

__all__ = ["ClippedAdam"]


class ClippedAdam(Optimizer):
    """Adam whose gradients are clamped to ``[-clip_norm, clip_norm]`` before each step, and
    whose learning rate is multiplied by ``lrd`` at the start of every step.

    With ``centered_variance`` the second moment tracks ``(grad - exp_avg) ** 2`` instead of
    ``grad ** 2`` (the centred variant of Adam).

    :param params: the parameters (or parameter groups) to optimize.
    :param lr: the learning rate.
    :param betas: decay rates of the running averages of the gradient and its square.
    :param eps: added to the denominator for numerical stability.
    :param weight_decay: L2 penalty.
    :param clip_norm: the bound gradients are clamped to, elementwise.
    :param lrd: the learning rate decay factor applied at every step.
    :param centered_variance: use the centred second moment.

    >>> p = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = ClippedAdam([p], lr=0.1, clip_norm=1.0)
    >>> p.grad = torch.tensor([100.0])
    >>> _ = opt.step()
    >>> p
    Parameter containing:
    tensor([0.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        clip_norm: float = 10.0,
        lrd: float = 1.0,
        centered_variance: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "clip_norm": clip_norm,
            "lrd": lrd,
            "centered_variance": centered_variance,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]  # torch's overloads allow a non-float closure result; ours is the plain form
        """Take one step.

        :param closure: re-evaluates the model and returns the loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            group["lr"] *= group["lrd"]
            beta1, beta2 = group["betas"]
            params: Iterable[torch.Tensor] = group["params"]
            for p in params:
                if p.grad is None:
                    continue
                grad = p.grad
                grad.clamp_(-group["clip_norm"], group["clip_norm"])
                state: dict[str, Any] = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                deviation = grad - exp_avg if group["centered_variance"] else grad
                exp_avg_sq.mul_(beta2).addcmul_(deviation, deviation, value=1 - beta2)
                denominator = exp_avg_sq.sqrt().add_(group["eps"])
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                p.addcdiv_(exp_avg, denominator, value=-step_size)
        return loss

"""``AdagradRMSProp``: the step-size schedule of ADVI (Kucukelbir et al., 2016, eqs. 10-11)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, ParamsT

__all__ = ["AdagradRMSProp"]


class AdagradRMSProp(Optimizer):
    """A blend of Adagrad and RMSProp: the squared gradient is averaged with weight ``t``
    (seeded with the first squared gradient), and step ``k`` moves by
    ``eta * k ** (delta - 1/2) * grad / (1 + sqrt(average))``.

    :param params: the parameters (or parameter groups) to optimize.
    :param eta: the step size scale.
    :param delta: shifts the exponent of the step-size decay.
    :param t: the weight of the newest squared gradient in the running average.

    >>> p = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = AdagradRMSProp([p], eta=1.0)
    >>> p.grad = torch.tensor([1.0])
    >>> _ = opt.step()
    >>> p
    Parameter containing:
    tensor([0.5000], requires_grad=True)
    """

    def __init__(self, params: ParamsT, eta: float = 1.0, delta: float = 1.0e-16, t: float = 0.1) -> None:
        super().__init__(params, {"eta": eta, "delta": delta, "t": t})
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = 0
                state["sum"] = torch.zeros_like(p)

    def share_memory(self) -> None:
        """Move the running averages to shared memory."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["sum"].share_memory_()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]  # torch's overloads allow a non-float closure result; ours is the plain form
        """Take one step.

        :param closure: re-evaluates the model and returns the loss.
        :raises NotImplementedError: for sparse gradients.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: Iterable[torch.Tensor] = group["params"]
            for p in params:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise NotImplementedError("AdagradRMSProp does not support sparse gradients")
                state: dict[str, Any] = self.state[p]
                state["step"] += 1
                if state["step"] == 1:
                    state["sum"] = grad * grad
                else:
                    state["sum"].mul_(1.0 - group["t"]).add_(group["t"] * grad * grad)
                lr = group["eta"] * state["step"] ** (-0.5 + group["delta"])
                p.addcdiv_(grad, 1.0 + state["sum"].sqrt(), value=-lr)
        return loss

"""Learning-rate schedules for SVI: :class:`PyroLRScheduler` and one factory per torch scheduler.

A scheduler wraps each parameter's optimizer. SVI steps the optimizers; the user steps the
schedules, usually once per epoch::

    scheduler = ember.optim.ExponentialLR({"optimizer": torch.optim.SGD, "optim_args": {"lr": 0.01}, "gamma": 0.1})
    svi = SVI(model, guide, scheduler, loss=Trace_ELBO())
    for epoch in range(num_epochs):
        svi.step(data)
        scheduler.step()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ember.optim.optim import OptimArgs, PyroOptim

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "PyroLRScheduler",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]


class PyroLRScheduler(PyroOptim):
    """A :class:`~ember.optim.optim.PyroOptim` whose per-parameter optimizers are wrapped in a
    torch learning-rate scheduler.

    :param scheduler_constructor: a :mod:`torch.optim.lr_scheduler` class.
    :param optim_args: ``{"optimizer": torch_optimizer_class, "optim_args": {...}, **kwargs}``:
        the optimizer, its arguments (a dict or a function of the param name), and the
        scheduler's own keyword arguments. The dict is not modified.
    :param clip_args: gradient clipping, as for :class:`~ember.optim.optim.PyroOptim`.

    >>> import ember, torch
    >>> ember.clear_param_store()
    >>> x = ember.param("x", torch.tensor(1.0))
    >>> x.unconstrained().grad = torch.tensor(1.0)
    >>> sched = PyroLRScheduler(torch.optim.lr_scheduler.StepLR,
    ...                         {"optimizer": torch.optim.SGD, "optim_args": {"lr": 1.0}, "step_size": 1, "gamma": 0.5})
    >>> sched([x.unconstrained()]); sched.step()
    >>> [opt.optimizer.param_groups[0]["lr"] for opt in sched.optim_objs.values()]
    [0.5]
    """

    def __init__(
        self,
        scheduler_constructor: Callable[..., Any],
        optim_args: dict[str, Any],
        clip_args: OptimArgs | None = None,
    ) -> None:
        self.pt_scheduler_constructor = scheduler_constructor
        kwargs = dict(optim_args)
        optim_constructor = kwargs.pop("optimizer")
        optimizer_args = kwargs.pop("optim_args")
        self.kwargs = kwargs
        super().__init__(optim_constructor, optimizer_args, clip_args)

    def __call__(self, params: Iterable[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        """Step each parameter's optimizer (not its schedule; see :meth:`step`)."""
        super().__call__(params, *args, **kwargs)

    def _get_optim(self, param: torch.Tensor) -> Any:
        return self.pt_scheduler_constructor(super()._get_optim(param), **self.kwargs)

    def step(self, *args: Any, **kwargs: Any) -> None:
        """Advance every schedule; arguments go to each scheduler's ``step`` (e.g. the
        metric for ``ReduceLROnPlateau``)."""
        for scheduler in self.optim_objs.values():
            scheduler.step(*args, **kwargs)


def ChainedScheduler(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.ChainedScheduler` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.ChainedScheduler, optim_args, clip_args)


def ConstantLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.ConstantLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.ConstantLR, optim_args, clip_args)


def CosineAnnealingLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.CosineAnnealingLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.CosineAnnealingLR, optim_args, clip_args)


def CosineAnnealingWarmRestarts(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, optim_args, clip_args)


def CyclicLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.CyclicLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.CyclicLR, optim_args, clip_args)


def ExponentialLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.ExponentialLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.ExponentialLR, optim_args, clip_args)


def LambdaLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.LambdaLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.LambdaLR, optim_args, clip_args)


def LinearLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.LinearLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.LinearLR, optim_args, clip_args)


def LRScheduler(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.LRScheduler` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.LRScheduler, optim_args, clip_args)


def MultiplicativeLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.MultiplicativeLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.MultiplicativeLR, optim_args, clip_args)


def MultiStepLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.MultiStepLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.MultiStepLR, optim_args, clip_args)


def OneCycleLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.OneCycleLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.OneCycleLR, optim_args, clip_args)


def PolynomialLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.PolynomialLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.PolynomialLR, optim_args, clip_args)


def ReduceLROnPlateau(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.ReduceLROnPlateau` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.ReduceLROnPlateau, optim_args, clip_args)


def SequentialLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.SequentialLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.SequentialLR, optim_args, clip_args)


def StepLR(optim_args: dict[str, Any], clip_args: OptimArgs | None = None) -> PyroLRScheduler:
    """Wrap :class:`torch.optim.lr_scheduler.StepLR` in a :class:`PyroLRScheduler`."""
    return PyroLRScheduler(torch.optim.lr_scheduler.StepLR, optim_args, clip_args)

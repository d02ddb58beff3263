"""``HorovodOptimizer``: an Ember optimizer whose torch optimizers are Horovod's distributed ones.

Horovod is optional and imported only when the first optimizer is built; without it use
:class:`~ember.optim.distributed.DistributedOptimizer`, which needs only ``torch.distributed``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import torch

from ember.optim.optim import PyroOptim
from ember.primitives import get_param_store

__all__ = ["HorovodOptimizer"]


class HorovodOptimizer(PyroOptim):
    """Wraps each torch optimizer ``pyro_optim`` builds in ``horovod.torch.DistributedOptimizer``.

    Params are stepped in the order of their param store names, so every worker issues
    Horovod's reductions in the same order.

    :param pyro_optim: the optimizer to distribute.
    :param horovod_kwargs: passed on to ``horovod.torch.DistributedOptimizer``.
    :raises ModuleNotFoundError: on the first step, if Horovod is not installed.
    """

    def __init__(self, pyro_optim: PyroOptim, **horovod_kwargs: Any) -> None:
        param_name = get_param_store().param_name

        def optim_constructor(params: list[torch.Tensor], **pt_kwargs: Any) -> Any:
            hvd = importlib.import_module("horovod.torch")
            pt_optim = pyro_optim.pt_optim_constructor(params, **pt_kwargs)
            named_parameters = [(param_name(p), p) for p in params]
            return hvd.DistributedOptimizer(pt_optim, named_parameters=named_parameters, **horovod_kwargs)

        super().__init__(optim_constructor, pyro_optim.pt_optim_args, pyro_optim.pt_clip_args or None)

    def __call__(self, params: Iterable[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        """Step ``params`` in the order of their names."""
        store = get_param_store()
        super().__call__(sorted(params, key=lambda p: store.param_name(p) or ""), *args, **kwargs)

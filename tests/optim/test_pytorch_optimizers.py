"""One factory per torch optimizer, named as in ``pyro.optim``, each wrapping the right class."""

from __future__ import annotations

import inspect

import pyro.optim
import pytest
import torch

import ember
import ember.optim
from ember.optim import PyroOptim, pytorch_optimizers


def _torch_optimizers() -> list[str]:
    return sorted(
        name
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type)
        and issubclass(cls, torch.optim.Optimizer)
        and cls not in (torch.optim.Optimizer, torch.optim.LBFGS)
    )


def test_every_torch_optimizer_but_lbfgs_has_a_factory() -> None:
    assert sorted(pytorch_optimizers.__all__) == _torch_optimizers()
    assert "LBFGS" not in ember.optim.__all__


def test_optimizer_names_match_pyro() -> None:
    ours = set(ember.optim.__all__)
    theirs = set(pyro.optim.__all__)
    # Not provided: torch's private _LRScheduler base.
    assert theirs - ours == {"_LRScheduler"}
    # Extra names: the submodules Pyro users import by path, and the torch.distributed wrapper
    # with its plate-sharding helper.
    assert ours - theirs == {
        "DistributedOptimizer",
        "adagrad_rmsprop",
        "clipped_adam",
        "dct_adam",
        "distributed",
        "horovod",
        "lr_scheduler",
        "optim",
        "pytorch_optimizers",
        "shard_indices",
    }


@pytest.mark.parametrize("name", _torch_optimizers())
def test_factory_wraps_the_torch_class_and_keeps_its_arguments(name: str) -> None:
    factory = getattr(ember.optim, name)
    assert list(inspect.signature(factory).parameters) == ["optim_args", "clip_args"]
    optim = factory({"lr": 0.01}, {"clip_value": 1.0})
    assert isinstance(optim, PyroOptim)
    assert optim.pt_optim_constructor is getattr(torch.optim, name)
    assert optim.pt_optim_args == {"lr": 0.01}
    assert optim.pt_clip_args == {"clip_value": 1.0}
    assert name in (factory.__doc__ or "")


@pytest.mark.parametrize("name", ["Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "ASGD", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD"])
def test_dense_optimizers_step_a_param(name: str) -> None:
    ember.param("w", torch.tensor([1.0, -1.0]))
    leaf = dict(ember.get_param_store().named_parameters())["w"]
    leaf.grad = torch.tensor([1.0, -1.0])
    getattr(ember.optim, name)({"lr": 0.1})([leaf])
    moved = ember.param("w").detach()
    assert bool((moved.abs() < 1.0).all()), f"{name} did not move the param against its gradient: {moved}"

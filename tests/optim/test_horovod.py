"""HorovodOptimizer: takes the wrapped optimizer's arguments; needs Horovod only when it steps."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import ember
from ember.optim import Adam, HorovodOptimizer, PyroOptim


@pytest.mark.skipif(importlib.util.find_spec("horovod") is not None, reason="Horovod is installed")
def test_building_works_without_horovod_and_stepping_names_the_missing_module() -> None:
    optim = HorovodOptimizer(Adam({"lr": 0.1}), op=None)
    assert isinstance(optim, PyroOptim) and optim.pt_optim_args == {"lr": 0.1}
    x = ember.param("x", torch.tensor(1.0))
    leaf = dict(ember.get_param_store().named_parameters())["x"]
    leaf.grad = torch.tensor(1.0)
    with pytest.raises(ModuleNotFoundError, match="horovod"):
        optim([leaf])
    assert x.item() == 1.0

"""One factory per :mod:`torch.optim` optimizer, returning a :class:`~ember.optim.optim.PyroOptim`.

``ember.optim.Adam({"lr": 0.01})`` builds a ``torch.optim.Adam`` for each parameter SVI steps.
``LBFGS`` is left out: its ``step`` needs a closure that re-runs the loss, which SVI does
not give. Optimizers newer than the oldest supported torch are looked up when called.
"""

from __future__ import annotations

import torch

from ember.optim.optim import OptimArgs, PyroOptim

__all__ = [
    "ASGD",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Muon",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SparseAdam",
]


def Adadelta(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Adadelta` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Adadelta, optim_args, clip_args)


def Adafactor(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Adafactor` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Adafactor, optim_args, clip_args)


def Adagrad(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Adagrad` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Adagrad, optim_args, clip_args)


def Adam(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Adam` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Adam, optim_args, clip_args)


def Adamax(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Adamax` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Adamax, optim_args, clip_args)


def AdamW(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.AdamW` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.AdamW, optim_args, clip_args)


def ASGD(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.ASGD` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.ASGD, optim_args, clip_args)


def Muon(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Muon` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Muon, optim_args, clip_args)


def NAdam(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.NAdam` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.NAdam, optim_args, clip_args)


def RAdam(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.RAdam` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.RAdam, optim_args, clip_args)


def RMSprop(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.RMSprop` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.RMSprop, optim_args, clip_args)


def Rprop(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.Rprop` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.Rprop, optim_args, clip_args)


def SGD(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.SGD` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.SGD, optim_args, clip_args)


def SparseAdam(optim_args: OptimArgs, clip_args: OptimArgs | None = None) -> PyroOptim:
    """Wrap :class:`torch.optim.SparseAdam` in a :class:`~ember.optim.optim.PyroOptim`."""
    return PyroOptim(torch.optim.SparseAdam, optim_args, clip_args)

"""Optimizers for SVI: torch optimizers wrapped per parameter (Pyro's ``pyro.optim``).

Every name here builds a :class:`PyroOptim` (or :class:`PyroLRScheduler`), which creates one
torch optimizer per parameter the first time SVI steps it::

    optimizer = ember.optim.Adam({"lr": 0.01})
    svi = SVI(model, guide, optimizer, loss=Trace_ELBO())
"""

from ember.optim import (
    adagrad_rmsprop,
    clipped_adam,
    dct_adam,
    distributed,
    horovod,
    lr_scheduler,
    optim,
    pytorch_optimizers,
)
from ember.optim.lr_scheduler import (
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiplicativeLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    PyroLRScheduler,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from ember.optim.distributed import DistributedOptimizer, shard_indices
from ember.optim.horovod import HorovodOptimizer
from ember.optim.optim import AdagradRMSProp, ClippedAdam, DCTAdam, PyroOptim
from ember.optim.pytorch_optimizers import (
    ASGD,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Muon,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
    SparseAdam,
)

__all__ = [
    "ASGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "AdagradRMSProp",
    "Adam",
    "AdamW",
    "Adamax",
    "ChainedScheduler",
    "ClippedAdam",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "DCTAdam",
    "DistributedOptimizer",
    "ExponentialLR",
    "HorovodOptimizer",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "Muon",
    "NAdam",
    "OneCycleLR",
    "PolynomialLR",
    "PyroLRScheduler",
    "PyroOptim",
    "RAdam",
    "RMSprop",
    "ReduceLROnPlateau",
    "Rprop",
    "SGD",
    "SequentialLR",
    "SparseAdam",
    "StepLR",
    "adagrad_rmsprop",
    "clipped_adam",
    "dct_adam",
    "distributed",
    "horovod",
    "lr_scheduler",
    "optim",
    "pytorch_optimizers",
    "shard_indices",
]

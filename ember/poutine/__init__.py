"""Effect handlers: the messengers, their handler functions, :class:`Trace` and the runtime.

The life of a message is described once, in :mod:`ember.poutine.runtime`. Pyro's module
paths (``pyro.poutine.trace_messenger`` and the like) exist as thin re-exporting modules.
"""

from ember.poutine import handlers, messenger, runtime, trace_struct, util

# Pyro's module paths, so ``pyro.poutine.trace_messenger`` and friends keep working.
from ember.poutine import (  # isort: skip
    block_messenger,
    broadcast_messenger,
    collapse_messenger,
    condition_messenger,
    do_messenger,
    enum_messenger,
    equalize_messenger,
    escape_messenger,
    indep_messenger,
    infer_config_messenger,
    lift_messenger,
    markov_messenger,
    mask_messenger,
    plate_messenger,
    reentrant_messenger,
    reparam_messenger,
    replay_messenger,
    scale_messenger,
    seed_messenger,
    subsample_messenger,
    substitute_messenger,
    trace_messenger,
    uncondition_messenger,
)
from ember.poutine.enumerate_config import config_enumerate
from ember.poutine.handlers import (
    block,
    broadcast,
    collapse,
    condition,
    do,
    enum,
    equalize,
    escape,
    infer_config,
    lift,
    markov,
    mask,
    queue,
    reparam,
    replay,
    scale,
    seed,
    substitute,
    trace,
    uncondition,
)
from ember.poutine.messenger import Messenger, block_messengers, unwrap
from ember.poutine.reentrant_messenger import ReentrantMessenger
from ember.poutine import guide
from ember.poutine.block_messenger import BlockMessenger
from ember.poutine.broadcast_messenger import BroadcastMessenger
from ember.poutine.collapse_messenger import CollapseMessenger
from ember.poutine.condition_messenger import ConditionMessenger
from ember.poutine.do_messenger import DoMessenger
from ember.poutine.enum_messenger import EnumMessenger
from ember.poutine.equalize_messenger import EqualizeMessenger
from ember.poutine.escape_messenger import EscapeMessenger
from ember.poutine.guide import GuideMessenger
from ember.poutine.infer_config_messenger import InferConfigMessenger
from ember.poutine.lift_messenger import LiftMessenger
from ember.poutine.markov_messenger import MarkovMessenger
from ember.poutine.mask_messenger import MaskMessenger
from ember.poutine.indep_messenger import IndepMessenger
from ember.poutine.plate_messenger import PlateMessenger, block_plate
from ember.poutine.subsample_messenger import SubsampleMessenger
from ember.poutine.reparam_messenger import ReparamHandler, ReparamMessenger
from ember.poutine.replay_messenger import ReplayMessenger
from ember.poutine.scale_messenger import ScaleMessenger
from ember.poutine.seed_messenger import SeedMessenger
from ember.poutine.substitute_messenger import SubstituteMessenger
from ember.poutine.trace_messenger import TraceHandler, TraceMessenger
from ember.poutine.uncondition_messenger import UnconditionMessenger
from ember.poutine.runtime import NonlocalExit, get_mask, get_plates
from ember.poutine.trace_struct import Trace
from ember.poutine.util import enable_validation, is_validation_enabled

__all__ = [
    "BlockMessenger",
    "BroadcastMessenger",
    "CollapseMessenger",
    "ConditionMessenger",
    "DoMessenger",
    "EnumMessenger",
    "EqualizeMessenger",
    "EscapeMessenger",
    "GuideMessenger",
    "IndepMessenger",
    "InferConfigMessenger",
    "LiftMessenger",
    "MarkovMessenger",
    "MaskMessenger",
    "Messenger",
    "NonlocalExit",
    "PlateMessenger",
    "ReentrantMessenger",
    "ReparamHandler",
    "ReparamMessenger",
    "ReplayMessenger",
    "ScaleMessenger",
    "SeedMessenger",
    "SubsampleMessenger",
    "SubstituteMessenger",
    "Trace",
    "TraceHandler",
    "TraceMessenger",
    "UnconditionMessenger",
    "block",
    "block_messengers",
    "block_plate",
    "broadcast",
    "collapse",
    "condition",
    "config_enumerate",
    "do",
    "enable_validation",
    "enum",
    "equalize",
    "escape",
    "get_mask",
    "get_plates",
    "guide",
    "handlers",
    "infer_config",
    "is_validation_enabled",
    "lift",
    "markov",
    "mask",
    "messenger",
    "queue",
    "reparam",
    "replay",
    "runtime",
    "scale",
    "seed",
    "substitute",
    "trace",
    "trace_struct",
    "uncondition",
    "unwrap",
    "util",
]

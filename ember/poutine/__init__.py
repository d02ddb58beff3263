"""Effect handlers: the messengers, their handler functions, :class:`Trace` and the runtime.

The life of a message is described once, in :mod:`ember.poutine.runtime`.
"""

from ember.poutine import handlers, messenger, runtime, trace_struct, util
from ember.poutine.handlers import (
    block,
    broadcast,
    condition,
    lift,
    mask,
    replay,
    scale,
    seed,
    substitute,
    trace,
    uncondition,
)
from ember.poutine.messenger import Messenger, ReentrantMessenger, block_messengers, unwrap
from ember.poutine.messengers.block import BlockMessenger
from ember.poutine.messengers.broadcast import BroadcastMessenger
from ember.poutine.messengers.condition import ConditionMessenger
from ember.poutine.messengers.lift import LiftMessenger
from ember.poutine.messengers.mask import MaskMessenger
from ember.poutine.messengers.plate import IndepMessenger, PlateMessenger, SubsampleMessenger, block_plate
from ember.poutine.messengers.replay import ReplayMessenger
from ember.poutine.messengers.scale import ScaleMessenger
from ember.poutine.messengers.seed import SeedMessenger
from ember.poutine.messengers.substitute import SubstituteMessenger
from ember.poutine.messengers.trace import TraceHandler, TraceMessenger
from ember.poutine.messengers.uncondition import UnconditionMessenger
from ember.poutine.runtime import NonlocalExit, get_mask, get_plates
from ember.poutine.trace_struct import Trace
from ember.poutine.util import enable_validation, is_validation_enabled

# --- exports: helper A ---
from ember.poutine.handlers import do, equalize, escape, infer_config, queue
from ember.poutine.messengers.do import DoMessenger
from ember.poutine.messengers.equalize import EqualizeMessenger
from ember.poutine.messengers.escape import EscapeMessenger
from ember.poutine.messengers.infer_config import InferConfigMessenger
# --- end helper A exports ---
# --- exports: helper B ---
from ember.poutine.enumerate_config import config_enumerate
from ember.poutine.handlers import enum, markov
from ember.poutine.messengers.enum import EnumMessenger
from ember.poutine.messengers.markov import MarkovMessenger

# --- end helper B exports ---
# --- exports: helper C ---
import sys as _sys

from ember.poutine.handlers import collapse, reparam
from ember.poutine.messengers import guide as guide
from ember.poutine.messengers.collapse import CollapseMessenger
from ember.poutine.messengers.guide import GuideMessenger
from ember.poutine.messengers.reparam import ReparamHandler, ReparamMessenger

# Pyro users import ``pyro.poutine.guide``; alias the module under that path.
_sys.modules.setdefault(f"{__name__}.guide", guide)
# --- end helper C exports ---

__all__ = [
    "BlockMessenger",
    "BroadcastMessenger",
    "ConditionMessenger",
    "IndepMessenger",
    "LiftMessenger",
    "MaskMessenger",
    "Messenger",
    "NonlocalExit",
    "PlateMessenger",
    "ReentrantMessenger",
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
    "condition",
    "enable_validation",
    "get_mask",
    "get_plates",
    "handlers",
    "is_validation_enabled",
    "lift",
    "mask",
    "messenger",
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
    "EnumMessenger",  # helper B
    "MarkovMessenger",  # helper B
    "config_enumerate",  # helper B
    "enum",  # helper B
    "markov",  # helper B
    "DoMessenger",  # helper A
    "EqualizeMessenger",  # helper A
    "EscapeMessenger",  # helper A
    "InferConfigMessenger",  # helper A
    "do",  # helper A
    "equalize",  # helper A
    "escape",  # helper A
    "infer_config",  # helper A
    "queue",  # helper A
    "CollapseMessenger",  # helper C
    "GuideMessenger",  # helper C
    "ReparamHandler",  # helper C
    "ReparamMessenger",  # helper C
    "collapse",  # helper C
    "guide",  # helper C
    "reparam",  # helper C
]

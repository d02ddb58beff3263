"""Inference algorithms built on the handlers (ELBOs, SVI, guides, predictive).

Each algorithm is a user of traces: it runs the guide and the model under ``trace`` and
``replay`` and works with the recorded sites (see :mod:`ember.poutine.runtime`).
"""

from ember.infer import autoguide, reparam
from ember.infer.abstract_infer import EmpiricalMarginal, TracePosterior, TracePredictive
from ember.infer.compiled_elbo import CompiledTraceEnum_ELBO, CompiledTraceMeanField_ELBO, CompiledTrace_ELBO
from ember.infer.csis import CSIS
from ember.infer.discrete import TraceEnumSample_ELBO, infer_discrete
from ember.infer.elbo import ELBO
from ember.infer.energy_distance import EnergyDistance
from ember.infer.importance import Importance
from ember.infer.mcmc import HMC, MCMC, NUTS, RandomWalkKernel, StreamingMCMC
from ember.infer.predictive import MHResampler, Predictive, WeighedPredictive
from ember.infer.renyi_elbo import RenyiELBO
from ember.infer.rws import ReweightedWakeSleep
from ember.infer.smcfilter import SMCFilter
from ember.infer.svgd import SVGD, IMQSteinKernel, RBFSteinKernel
from ember.infer.svi import SVI
from ember.infer.trace_elbo import JitTrace_ELBO, Trace_ELBO
from ember.infer.trace_mean_field_elbo import JitTraceMeanField_ELBO, TraceMeanField_ELBO
from ember.infer.trace_mmd import Trace_MMD
from ember.infer.trace_tail_adaptive_elbo import TraceTailAdaptive_ELBO
from ember.infer.traceenum_elbo import JitTraceEnum_ELBO, TraceEnum_ELBO
from ember.infer.tracegraph_elbo import JitTraceGraph_ELBO, TraceGraph_ELBO
from ember.infer.tracetmc_elbo import TraceTMC_ELBO
from ember.infer.util import enable_validation, is_validation_enabled
from ember.poutine.enumerate_config import config_enumerate

__all__ = [
    "CSIS",
    "CompiledTraceEnum_ELBO",
    "CompiledTraceMeanField_ELBO",
    "CompiledTrace_ELBO",
    "ELBO",
    "EmpiricalMarginal",
    "EnergyDistance",
    "HMC",
    "IMQSteinKernel",
    "Importance",
    "JitTraceEnum_ELBO",
    "JitTraceGraph_ELBO",
    "JitTraceMeanField_ELBO",
    "JitTrace_ELBO",
    "MCMC",
    "MHResampler",
    "NUTS",
    "Predictive",
    "RBFSteinKernel",
    "RandomWalkKernel",
    "RenyiELBO",
    "ReweightedWakeSleep",
    "SMCFilter",
    "SVGD",
    "SVI",
    "StreamingMCMC",
    "TraceEnumSample_ELBO",
    "TraceEnum_ELBO",
    "TraceGraph_ELBO",
    "TraceMeanField_ELBO",
    "TracePosterior",
    "TracePredictive",
    "TraceTMC_ELBO",
    "TraceTailAdaptive_ELBO",
    "Trace_ELBO",
    "Trace_MMD",
    "WeighedPredictive",
    "autoguide",
    "config_enumerate",
    "enable_validation",
    "infer_discrete",
    "is_validation_enabled",
    "reparam",
]

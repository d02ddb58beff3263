"""Inference algorithms built on the handlers (ELBOs, SVI, guides, predictive).

Each algorithm is a user of traces: it runs the guide and the model under ``trace`` and
``replay`` and works with the recorded sites (see :mod:`ember.poutine.runtime`).
"""

from ember.infer import autoguide, reparam
from ember.infer.abstract_infer import EmpiricalMarginal, TracePosterior
from ember.infer.elbo import ELBO
from ember.infer.importance import Importance
from ember.infer.mcmc import HMC, MCMC, NUTS, RandomWalkKernel, StreamingMCMC
from ember.infer.predictive import Predictive
from ember.infer.renyi_elbo import RenyiELBO
from ember.infer.svi import SVI
from ember.infer.trace_elbo import JitTrace_ELBO, Trace_ELBO
from ember.infer.trace_mean_field_elbo import JitTraceMeanField_ELBO, TraceMeanField_ELBO
from ember.infer.tracegraph_elbo import JitTraceGraph_ELBO, TraceGraph_ELBO
from ember.infer.util import enable_validation, is_validation_enabled
from ember.poutine.enumerate_config import config_enumerate

__all__ = [
    "ELBO",
    "EmpiricalMarginal",
    "HMC",
    "Importance",
    "JitTraceGraph_ELBO",
    "JitTraceMeanField_ELBO",
    "JitTrace_ELBO",
    "MCMC",
    "NUTS",
    "Predictive",
    "RandomWalkKernel",
    "RenyiELBO",
    "SVI",
    "StreamingMCMC",
    "TraceGraph_ELBO",
    "TraceMeanField_ELBO",
    "TracePosterior",
    "Trace_ELBO",
    "autoguide",
    "config_enumerate",
    "enable_validation",
    "is_validation_enabled",
    "reparam",
]

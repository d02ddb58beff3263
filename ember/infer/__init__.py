"""Inference algorithms built on the handlers (ELBOs, SVI, guides, predictive)."""

# --- imports: optim/SVI/predictive/importance (helper D) ---
from ember.infer.abstract_infer import EmpiricalMarginal, TracePosterior
from ember.infer.importance import Importance
from ember.infer.predictive import Predictive
from ember.infer.svi import SVI

# --- end helper D imports ---
# --- imports: ELBOs (helper E) ---
from ember.infer.elbo import ELBO
from ember.infer.renyi_elbo import RenyiELBO
from ember.infer.trace_elbo import JitTrace_ELBO, Trace_ELBO
from ember.infer.trace_mean_field_elbo import JitTraceMeanField_ELBO, TraceMeanField_ELBO
from ember.infer.tracegraph_elbo import JitTraceGraph_ELBO, TraceGraph_ELBO
from ember.infer.util import enable_validation, is_validation_enabled

# --- end helper E imports ---
# --- imports: autoguide (helper F) ---
from ember.infer import autoguide as autoguide

# --- end helper F imports ---
# --- imports: reparam/config_enumerate (lead) ---
from ember.poutine.enumerate_config import config_enumerate

# --- end lead imports ---

__all__: list[str] = [
    # helper D
    "EmpiricalMarginal",
    "Importance",
    "Predictive",
    "SVI",
    "TracePosterior",
    # helper E
    "ELBO",
    "JitTraceGraph_ELBO",
    "JitTraceMeanField_ELBO",
    "JitTrace_ELBO",
    "RenyiELBO",
    "TraceGraph_ELBO",
    "TraceMeanField_ELBO",
    "Trace_ELBO",
    "enable_validation",
    "is_validation_enabled",
    # helper F
    "autoguide",
    # lead
    "config_enumerate",
]

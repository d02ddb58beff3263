"""Markov chain Monte Carlo: HMC and NUTS on a compiled potential, random-walk Metropolis, and
the :class:`MCMC` / :class:`StreamingMCMC` drivers with sequential, parallel and vectorized chains.
"""

from ember.infer.mcmc.adaptation import ArrowheadMassMatrix, BlockMassMatrix, WarmupAdapter
from ember.infer.mcmc.api import MCMC, StreamingMCMC
from ember.infer.mcmc.hmc import HMC
from ember.infer.mcmc.mcmc_kernel import MCMCKernel
from ember.infer.mcmc.nuts import NUTS
from ember.infer.mcmc.rwkernel import RandomWalkKernel

__all__ = [
    "ArrowheadMassMatrix",
    "BlockMassMatrix",
    "HMC",
    "MCMC",
    "MCMCKernel",
    "NUTS",
    "RandomWalkKernel",
    "StreamingMCMC",
    "WarmupAdapter",
]

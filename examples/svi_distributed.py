"""Data-parallel SVI: the Bayesian linear regression fitted by several processes at once.

Run with ``torchrun --standalone --nproc_per_node=2 examples/svi_distributed.py``. Every
process holds the whole data set but fits only its shard of the ``data`` plate
(:func:`ember.optim.shard_indices`): the plate scales the shard's log likelihood to the full
data set, and :class:`ember.optim.DistributedOptimizer` averages the gradients across the
processes before each step, so all of them take the same step and keep equal params. Rank 0
prints the loss curve's first and last values and the fitted coefficients.

It runs on the gloo backend on CPU and on NCCL, one GPU per process, where CUDA is present.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist

import ember as pyro
import ember.distributions as dist
from ember.infer import SVI, Trace_ELBO
from ember.infer.autoguide import AutoNormal
from ember.optim import DistributedOptimizer, shard_indices

TRUE_INTERCEPT, TRUE_SLOPE, TRUE_NOISE = 1.5, -2.0, 0.5


def make_data(num_points: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The same noisy line on every process (the seed is shared)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(num_points, generator=gen)
    y = TRUE_INTERCEPT + TRUE_SLOPE * x + TRUE_NOISE * torch.randn(num_points, generator=gen)
    return x.to(device), y.to(device)


def model(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
    """y ~ Normal(intercept + slope * x, noise) on this process's shard ``idx`` of the data."""
    intercept = pyro.sample("intercept", dist.Normal(x.new_tensor(0.0), 10.0))
    slope = pyro.sample("slope", dist.Normal(x.new_tensor(0.0), 10.0))
    noise = pyro.sample("noise", dist.HalfNormal(x.new_tensor(5.0)))
    with pyro.plate("data", len(x), subsample=idx, device=x.device):
        pyro.sample("y", dist.Normal(intercept + slope * x[idx], noise), obs=y[idx])


def main(num_points: int = 1000, num_steps: int = 600) -> None:
    cuda = torch.cuda.is_available()
    torch_dist.init_process_group("nccl" if cuda else "gloo")
    try:
        rank = torch_dist.get_rank()
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        torch.set_num_threads(1)
        x, y = make_data(num_points, device)
        idx = shard_indices(num_points, device=device)
        guide = AutoNormal(model)
        svi = SVI(model, guide, DistributedOptimizer(pyro.optim.Adam({"lr": 0.03})), Trace_ELBO())
        # The guide's initial params come from the first step's draws: the same seed on
        # every process gives them equal starting points; afterwards each draws its own.
        pyro.set_rng_seed(0)
        losses = [svi.step(x, y, idx)]
        pyro.set_rng_seed(1 + rank)
        losses += [svi.step(x, y, idx) for _ in range(num_steps - 1)]
        # Each loss estimates the full data set's; average the processes' estimates.
        curve = torch.tensor([losses[0], losses[-1]], dtype=torch.float64, device=device)
        torch_dist.all_reduce(curve)
        curve /= torch_dist.get_world_size()
        medians = {name: float(value) for name, value in guide.median(x, y, idx).items()}
        if rank == 0:
            print(f"{torch_dist.get_world_size()} processes, {len(idx)} of {num_points} points each")
            print(f"loss: first {curve[0]:.1f}, last {curve[1]:.1f}")
            print(
                f"intercept {medians['intercept']:.3f} (true {TRUE_INTERCEPT}), "
                f"slope {medians['slope']:.3f} (true {TRUE_SLOPE}), noise {medians['noise']:.3f} (true {TRUE_NOISE})"
            )
    finally:
        torch_dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""Data-parallel SVI throughput: data points per second with 1 and with 2 processes.

The model is the Bayesian linear regression of ``examples/svi_distributed.py`` on 100,000
points (``--points``), with a hand-written mean-field guide, ``Trace_ELBO`` and
``DistributedOptimizer(Adam)``. With ``P`` processes each fits its ``1/P`` shard of the data
plate (``shard_indices``), so one SVI step of the group covers the whole data set; the
throughput is ``points * steps / seconds``, timed on rank 0 between two barriers.

Runs with 1 and 2 processes alternate for ``--rounds`` rounds (fresh process groups each
time, gloo on loopback; NCCL with one GPU per process for ``--device cuda``); the table shows
medians, for 100,000 and 1,000,000 points by default. Each process uses one torch thread.
Each step of ``DistributedOptimizer`` runs two all-reduces (the params' signature check, then
the gradients); with gloo on a 2-core machine each costs ~0.5-1.2 ms, so two processes gain
only once a shard's step takes well over that (here: 1,000,000 points, not 100,000).

Run ``PYTHONPATH=. python bench/svi_distributed.py`` (about a minute) or ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from typing import Any

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from _common import table, versions

import ember
import ember.distributions as dist
from ember.infer import SVI, Trace_ELBO
from ember.optim import Adam, DistributedOptimizer, shard_indices


def model(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
    a = ember.sample("a", dist.Normal(x.new_tensor(0.0), 10.0))
    b = ember.sample("b", dist.Normal(x.new_tensor(0.0), 10.0))
    s = ember.sample("s", dist.HalfNormal(x.new_tensor(5.0)))
    with ember.plate("data", len(x), subsample=idx, device=x.device):
        ember.sample("y", dist.Normal(a + b * x[idx], s), obs=y[idx])


def guide(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
    positive = dist.constraints.positive
    for name, family in (("a", dist.Normal), ("b", dist.Normal), ("s", dist.LogNormal)):
        loc = ember.param(f"{name}_loc", x.new_tensor(0.0))
        scale = ember.param(f"{name}_scale", x.new_tensor(1.0), constraint=positive)
        ember.sample(name, family(loc, scale))


def _worker(rank: int, world_size: int, port: int, points: int, steps: int, device_name: str, out: Any) -> None:
    torch.set_num_threads(1)
    cuda = device_name.startswith("cuda")
    device = torch.device("cuda", rank % torch.cuda.device_count()) if cuda else torch.device(device_name)
    torch_dist.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(points, generator=gen)
        y = (1.5 - 2.0 * x + 0.5 * torch.randn(points, generator=gen)).to(device)
        x = x.to(device)
        idx = shard_indices(points, device=device)
        torch.manual_seed(0)
        svi = SVI(model, guide, DistributedOptimizer(Adam({"lr": 0.01})), Trace_ELBO())
        for _ in range(3):
            svi.step(x, y, idx)
        torch_dist.barrier()
        start = time.perf_counter()
        for _ in range(steps):
            svi.step(x, y, idx)
        torch_dist.barrier()
        if rank == 0:
            out.put(points * steps / (time.perf_counter() - start))
    finally:
        torch_dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def throughput(world_size: int, points: int, steps: int, device: str) -> float:
    """Data points per second of one run with ``world_size`` processes."""
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(
        _worker, args=(world_size, _free_port(), points, steps, device, queue), nprocs=world_size, start_method="spawn"
    )
    value: float = queue.get()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--points", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    parser.add_argument("--quick", action="store_true", help="2 rounds x 10 steps")
    args = parser.parse_args()
    rounds, steps = (2, 10) if args.quick else (args.rounds, args.steps)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"Data-parallel SVI.step, {steps} steps per run, median of {rounds} runs each, device {args.device}\n{versions()}, {os.cpu_count()} CPUs")
    rows = [("points", "processes", "points/s", "vs 1 process", "ms per step")]
    for points in args.points:
        samples: dict[int, list[float]] = {1: [], 2: []}
        for r in range(rounds):
            for world_size in (1, 2) if r % 2 == 0 else (2, 1):
                samples[world_size].append(throughput(world_size, points, steps, args.device))
        med = {n: statistics.median(values) for n, values in samples.items()}
        for n in (1, 2):
            rows.append((f"{points:,}", str(n), f"{med[n]:,.0f}", f"{med[n] / med[1]:.2f}x", f"{points / med[n] * 1e3:.2f}"))
    print(table(rows))

if __name__ == "__main__":
    main()

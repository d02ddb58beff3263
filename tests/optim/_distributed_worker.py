"""One rank of the two-process DistributedOptimizer test (run by tests/optim/test_distributed.py).

Usage: ``python -m tests.optim._distributed_worker RANK WORLD_SIZE PORT OUT_FILE``. Trains a
model on this rank's shard with SVI and plain SGD, then tries a step with params that differ
across ranks; writes the params and the mismatch error to ``OUT_FILE`` with ``torch.save``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import torch
import torch.distributed as torch_dist

import ember
import ember.distributions as dist
from ember.infer import SVI, Trace_ELBO
from ember.optim import SGD, DistributedOptimizer

SHARDS = [torch.tensor([0.5, 1.5, -0.3]), torch.tensor([2.0, 2.5, 1.0])]
STEPS = 5


def model(data: torch.Tensor) -> None:
    loc = ember.param("loc", torch.tensor(0.0))
    scale = ember.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    with ember.plate("data", len(data)):
        ember.sample("x", dist.Normal(loc, scale), obs=data)


def guide(data: torch.Tensor) -> None:
    pass


def main() -> None:
    rank, world_size, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch_dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=30)
    )
    try:
        svi = SVI(model, guide, DistributedOptimizer(SGD({"lr": 0.1})), Trace_ELBO())
        for _ in range(STEPS):
            svi.step(SHARDS[rank])
        result: dict[str, object] = {name: ember.param(name).detach().clone() for name in ("loc", "scale")}

        def mismatched(data: torch.Tensor) -> None:
            model(data)
            # Rank 1 has one param more, and "loc2" of a different shape on each rank.
            ember.param("loc2", torch.zeros(rank + 1))
            if rank == 1:
                ember.param("extra", torch.zeros(2))

        try:
            SVI(mismatched, guide, DistributedOptimizer(SGD({"lr": 0.1})), Trace_ELBO()).step(SHARDS[rank])
        except ValueError as error:
            result["error"] = str(error)
        result["loc_after_error"] = ember.param("loc").detach().clone()
        torch.save(result, out)
    finally:
        torch_dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""One rank of the two-process DistributedOptimizer test (run by tests/optim/test_distributed.py).

Usage: ``python -m tests.optim._distributed_worker RANK WORLD_SIZE PORT OUT_FILE``. Trains a
model on this rank's shard with SVI and plain SGD; then fits a regression data-parallel on a
plate sharded with ``shard_indices`` (recording the params after every step); then tries a
step with params that differ across ranks. Writes the params and the mismatch error to
``OUT_FILE`` with ``torch.save``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import torch
import torch.distributed as torch_dist

import ember
import ember.distributions as dist
from ember.infer import SVI, Trace_ELBO
from ember.optim import SGD, Adam, DistributedOptimizer, shard_indices

SHARDS = [torch.tensor([0.5, 1.5, -0.3]), torch.tensor([2.0, 2.5, 1.0])]
STEPS = 5
REGRESSION_STEPS = 20


def model(data: torch.Tensor) -> None:
    loc = ember.param("loc", torch.tensor(0.0))
    scale = ember.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    with ember.plate("data", len(data)):
        ember.sample("x", dist.Normal(loc, scale), obs=data)


def guide(data: torch.Tensor) -> None:
    pass


def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(10, generator=gen)
    return x, 1.0 - 2.0 * x + 0.3 * torch.randn(10, generator=gen)


def regression_model(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None) -> None:
    a = ember.sample("a", dist.Normal(0.0, 5.0))
    b = ember.sample("b", dist.Normal(0.0, 5.0))
    if idx is None:
        with ember.plate("data", len(x)):
            ember.sample("y", dist.Normal(a + b * x, 0.3), obs=y)
    else:
        with ember.plate("data", len(x), subsample=idx):
            ember.sample("y", dist.Normal(a + b * x[idx], 0.3), obs=y[idx])


def regression_guide(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None) -> None:
    for name in ("a", "b"):
        loc = ember.param(f"{name}_loc", torch.tensor(0.0))
        scale = ember.param(f"{name}_scale", torch.tensor(1.0), constraint=dist.constraints.positive)
        ember.sample(name, dist.Normal(loc, scale))


def regression_params() -> dict[str, torch.Tensor]:
    return {name: ember.param(name).detach().clone() for name in ("a_loc", "a_scale", "b_loc", "b_scale")}


BIG = 5000  # above DistributedOptimizer's inline gradient size


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

        # Data-parallel regression (its own param names): the same seed on every rank, so the
        # draws of the global latents agree.
        torch.manual_seed(0)
        x, y = regression_data()
        idx = shard_indices(len(x))
        svi = SVI(regression_model, regression_guide, DistributedOptimizer(Adam({"lr": 0.05})), Trace_ELBO())
        trajectory = []
        for _ in range(REGRESSION_STEPS):
            svi.step(x, y, idx)
            trajectory.append(regression_params())
        result["trajectory"] = trajectory
        result["shard"] = idx

        # More gradient elements than the first all-reduce carries: the second one reduces them.
        def big_loss(model: object, guide: object) -> torch.Tensor:
            big = ember.param("big", torch.zeros(BIG))
            return 0.5 * ((big - (rank + 1.0)) ** 2).sum()

        SVI(None, None, DistributedOptimizer(SGD({"lr": 0.1})), big_loss).step()  # type: ignore[arg-type]  # a loss that ignores model and guide
        result["big"] = ember.param("big").detach().clone()


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

"""DistributedOptimizer: two gloo processes on loopback keep equal params, the steps of the
full-data gradient; mismatched params raise on both; no process group, a clear error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import SVI, Trace_ELBO
from ember.optim import SGD, Adam, DistributedOptimizer, shard_indices
from tests.optim._distributed_worker import (
    BIG,
    REGRESSION_STEPS,
    SHARDS,
    STEPS,
    guide,
    model,
    regression_data,
    regression_guide,
    regression_model,
    regression_params,
)

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of two gloo processes on loopback recorded (one launch for the module)."""
    port = _free_port()
    tmp_path = tmp_path_factory.mktemp("distributed")
    outs = [tmp_path / f"rank{rank}.pt" for rank in range(2)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.optim._distributed_worker", str(rank), "2", str(port), str(outs[rank])],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    try:
        logs = [p.communicate(timeout=90)[0].decode() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], logs
    return [torch.load(out) for out in outs]


def test_two_processes_take_the_steps_of_the_full_data_gradient(results: list[dict[str, Any]]) -> None:
    assert torch.equal(results[0]["loc"], results[1]["loc"]) and torch.equal(results[0]["scale"], results[1]["scale"])

    # One process on the mean of the two shards' losses takes exactly these steps.
    ember.clear_param_store()
    svi = SVI(_mean_of_shards, guide, SGD({"lr": 0.1}), Trace_ELBO())
    for _ in range(STEPS):
        svi.step(torch.zeros(0))
    for name in ("loc", "scale"):
        assert torch.allclose(results[0][name], ember.param(name).detach(), rtol=1e-6), name

    for result in results:
        message = result["error"]
        assert isinstance(message, str)
        assert "'extra': rank 0: missing, rank 1: shape [2] torch.float32" in message
        assert "'loc2': rank 0: shape [1] torch.float32, rank 1: shape [2] torch.float32" in message
        assert "'loc'" not in message
        # The failed step moved nothing.
        assert torch.equal(result["loc_after_error"], results[0]["loc"])


def test_a_sharded_plate_takes_the_full_batch_steps_and_ranks_agree_after_each(results: list[dict[str, Any]]) -> None:
    assert [r["shard"].tolist() for r in results] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    for step, (p0, p1) in enumerate(zip(results[0]["trajectory"], results[1]["trajectory"])):
        for name in p0:
            assert torch.equal(p0[name], p1[name]), (step, name)
    # One process on the full batch, with the same seed and total scale.
    ember.clear_param_store()
    torch.manual_seed(0)
    x, y = regression_data()
    svi = SVI(regression_model, regression_guide, Adam({"lr": 0.05}), Trace_ELBO())
    for step in range(REGRESSION_STEPS):
        svi.step(x, y, None)
        expected = regression_params()
        for name, value in expected.items():
            assert torch.allclose(results[0]["trajectory"][step][name], value, atol=1e-5, rtol=0), (step, name)
    # The fit moved: the check above compares a trajectory, not the initial values.
    assert abs(float(expected["b_loc"])) > 0.5


def test_gradients_too_big_for_the_first_all_reduce_are_averaged_by_a_second(results: list[dict[str, Any]]) -> None:
    # Rank r's gradient at 0 is -(r + 1); the average over two ranks is -1.5, so one SGD step
    # with lr 0.1 lands every element at 0.15 on both ranks.
    for result in results:
        torch.testing.assert_close(result["big"], torch.full((BIG,), 0.15), rtol=0.0, atol=1e-7)


def test_shard_indices_cover_the_plate_in_near_equal_blocks() -> None:
    blocks = [shard_indices(11, rank=r, world_size=3).tolist() for r in range(3)]
    assert blocks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert shard_indices(4, rank=0, world_size=1, device="meta").device.type == "meta"


def test_shard_indices_bad_input() -> None:
    with pytest.raises(ValueError, match="cannot split a plate of size 3 into 4 shards"):
        shard_indices(3, rank=0, world_size=4)
    with pytest.raises(ValueError, match="rank 2 is out of range for world_size 2"):
        shard_indices(10, rank=2, world_size=2)
    with pytest.raises(RuntimeError, match="process group"):
        shard_indices(10)


def _mean_of_shards(unused: torch.Tensor) -> None:
    loc = ember.param("loc", torch.tensor(0.0))
    scale = ember.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    for i, shard in enumerate(SHARDS):
        with ember.poutine.scale(scale=1.0 / len(SHARDS)), ember.plate(f"data{i}", len(shard)):
            ember.sample(f"x{i}", dist.Normal(loc, scale), obs=shard)


def test_without_a_process_group_the_error_says_how_to_start_one() -> None:
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match=r"needs an initialised torch.distributed process group.*init_process_group\(backend='gloo'.*torchrun"):
        DistributedOptimizer(Adam({"lr": 0.1}))
    with pytest.raises(RuntimeError, match="process group"):
        SVI(model, guide, DistributedOptimizer(Adam({"lr": 0.1})), Trace_ELBO())

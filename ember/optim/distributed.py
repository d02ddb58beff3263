"""``DistributedOptimizer``: data-parallel SVI over a ``torch.distributed`` process group.

Each process runs the model on its shard of the data; before every step the gradients of
the stepped params are averaged (or summed) across the group with one all-reduce, so every
process takes the same step and the params stay equal. The params' names and shapes are
compared across processes first (one tiny all-reduce of a digest); a mismatch raises
``ValueError`` on every process, naming the params, instead of hanging in a collective.

Sharding a data plate: :func:`shard_indices` gives this process its share of a plate's
indices; passed as ``ember.plate("data", N, subsample=idx)``, the plate scales each
process's log likelihood by ``N / len(idx)``, so every process estimates the full data
set's ELBO, and the averaged gradient is the full-batch gradient when the shards have equal
sizes (``N`` divisible by the world size)::

    idx = shard_indices(len(x))
    def model(x, y):
        ...
        with ember.plate("data", len(x), subsample=idx):
            ember.sample("y", dist.Normal(a + b * x[idx], s), obs=y[idx])
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as torch_dist

from ember.optim.optim import PyroOptim
from ember.primitives import get_param_store

__all__ = ["DistributedOptimizer", "shard_indices"]

_HOW_TO_START = (
    "DistributedOptimizer needs an initialised torch.distributed process group. In every process call "
    "torch.distributed.init_process_group(backend='gloo', init_method='tcp://HOST:PORT', rank=RANK, "
    "world_size=WORLD_SIZE) before building it, or launch the script with torchrun, which sets "
    "MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE for init_process_group(backend=...)."
)


def _require_process_group() -> None:
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        raise RuntimeError(_HOW_TO_START)


def shard_indices(
    size: int,
    rank: int | None = None,
    world_size: int | None = None,
    device: str | torch.device | None = None,
    group: Any = None,
) -> torch.Tensor:
    """This process's contiguous block of ``range(size)``, for ``plate(..., subsample=...)``.

    Blocks are as equal as possible (the first ``size % world_size`` have one index more)
    and together cover every index once.

    :param size: the plate's full size.
    :param rank: the shard to return (default: this process's rank in ``group``).
    :param world_size: the number of shards (default: the size of ``group``).
    :param device: where the indices live (default: torch's default device).
    :param group: the process group whose rank and size are the defaults.
    :raises RuntimeError: if ``rank`` or ``world_size`` is left out without a process group.
    :raises ValueError: if there are more shards than indices, or ``rank`` is out of range.

    >>> shard_indices(10, rank=1, world_size=3)
    tensor([4, 5, 6])
    """
    if rank is None or world_size is None:
        _require_process_group()
        rank = torch_dist.get_rank(group) if rank is None else rank
        world_size = torch_dist.get_world_size(group) if world_size is None else world_size
    if world_size < 1 or world_size > size:
        raise ValueError(
            f"shard_indices: cannot split a plate of size {size} into {world_size} shards; "
            "every shard needs at least one index (use fewer processes or more data)"
        )
    if not 0 <= rank < world_size:
        raise ValueError(f"shard_indices: rank {rank} is out of range for world_size {world_size}")
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    stop = start + base + (1 if rank < extra else 0)
    return torch.arange(start, stop, device=device)


def _signature(named: list[tuple[str, torch.Tensor]]) -> list[tuple[str, tuple[int, ...], str]]:
    return [(name, tuple(p.shape), str(p.dtype)) for name, p in named]


def _digest(signature: list[tuple[str, tuple[int, ...], str]]) -> int:
    # A digest stable across processes (Python's str hash is salted per process).
    return int.from_bytes(hashlib.sha256(repr(signature).encode()).digest()[:7], "big")


class DistributedOptimizer(PyroOptim):
    """Wraps an Ember optimizer so that every step uses gradients reduced across processes.

    The wrapper steps with the same torch optimizer class and arguments as ``pyro_optim``
    (whose pending loaded state it takes over). Params are matched across processes by
    their param store names, in sorted order; a param without a gradient on some process
    contributes zeros.

    :param pyro_optim: the optimizer to distribute (e.g. ``ember.optim.Adam({...})``).
    :param average: divide the summed gradients by the world size (default); else sum.
    :param group: the process group (default: the global one).
    :raises RuntimeError: if no process group is initialised (the message says how to start one).

    Example (in each of ``N`` processes)::

        torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:29500",
                                             rank=rank, world_size=N)
        optim = DistributedOptimizer(ember.optim.Adam({"lr": 0.01}))
        svi = SVI(model, guide, optim, Trace_ELBO())
        for step in range(1000):
            svi.step(shard_of_the_data)
    """

    def __init__(self, pyro_optim: PyroOptim, average: bool = True, group: Any = None) -> None:
        _require_process_group()
        if not isinstance(pyro_optim, PyroOptim):
            raise TypeError(f"DistributedOptimizer wraps a PyroOptim, got {type(pyro_optim).__name__}")
        super().__init__(pyro_optim.pt_optim_constructor, pyro_optim.pt_optim_args, pyro_optim.pt_clip_args or None)
        self._state_waiting_to_be_consumed.update(pyro_optim._state_waiting_to_be_consumed)
        self.pyro_optim = pyro_optim
        self.average = average
        self.group = group
        self._checked: tuple[tuple[str, tuple[int, ...], str], ...] | None = None

    def __call__(self, params: Iterable[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        """Reduce the gradients of ``params`` across the group, then step them all."""
        _require_process_group()
        named = self._named(params)
        self._check_consistent(named)
        self._reduce([p for _, p in named])
        super().__call__([p for _, p in named], *args, **kwargs)

    @staticmethod
    def _named(params: Iterable[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        store = get_param_store()
        named = []
        for index, p in enumerate(params):
            name = store.param_name(p)
            named.append((f"<unnamed param #{index}>" if name is None else name, p))
        return sorted(named, key=lambda item: item[0])

    def _check_consistent(self, named: list[tuple[str, torch.Tensor]]) -> None:
        signature = _signature(named)
        digest = _digest(signature)
        # max(d) and -min(d) in one all-reduce: every process agrees iff they are equal.
        bounds = torch.tensor([digest, -digest], dtype=torch.int64)
        torch_dist.all_reduce(bounds, op=torch_dist.ReduceOp.MAX, group=self.group)
        if int(bounds[0]) == -int(bounds[1]):
            return
        # Every process saw the mismatch, so every process joins this gather and raises.
        gathered: list[Any] = [None] * torch_dist.get_world_size(self.group)
        torch_dist.all_gather_object(gathered, signature, group=self.group)
        raise ValueError(self._mismatch_message(gathered))

    @staticmethod
    def _mismatch_message(signatures: list[list[tuple[str, tuple[int, ...], str]]]) -> str:
        tables = [{name: (shape, dtype) for name, shape, dtype in sig} for sig in signatures]
        names = sorted(set().union(*tables))
        lines = []
        for name in names:
            seen = [table.get(name) for table in tables]
            if len(set(seen)) > 1:
                per_rank = ", ".join(
                    f"rank {rank}: {'missing' if entry is None else f'shape {list(entry[0])} {entry[1]}'}"
                    for rank, entry in enumerate(seen)
                )
                lines.append(f"  {name!r}: {per_rank}")
        return "DistributedOptimizer: the processes step different params; they must match by name and shape:\n" + "\n".join(lines)

    def _reduce(self, params: list[torch.Tensor]) -> None:
        if not params:
            return
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch_dist.all_reduce(flat, op=torch_dist.ReduceOp.SUM, group=self.group)
        if self.average:
            flat /= torch_dist.get_world_size(self.group)
        offset = 0
        for p, g in zip(params, grads):
            size = g.numel()
            p.grad = flat[offset : offset + size].view_as(g).clone()
            offset += size

"""``DistributedOptimizer``: data-parallel SVI over a ``torch.distributed`` process group.

Each process runs the model on its shard of the data; before every step the gradients of
the stepped params are averaged (or summed) across the group, so every process takes the same
step and the params stay equal. The params' names, shapes and dtypes are compared across
processes in the same collective: every step starts with one fixed-size all-reduce (the same
size on every process, whatever its params) that carries a digest of the param signature
and, when they fit (up to ``_INLINE`` elements in all), the gradients themselves. So a small
model takes one all-reduce a step (on gloo each costs ~0.5-1 ms, more than the compute of a
small shard), a larger one a second for its gradients, and a mismatch raises ``ValueError`` on
every process, naming the params, instead of a collective of unequal sizes (which aborts
gloo and hangs NCCL).

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


# The first all-reduce of a step: for each of three 16-bit parts d of the digest, sum(d) and
# sum(d**2) (every process has the same d iff n * sum(d**2) == sum(d)**2, exact in float64 for
# fewer than 1,400 processes), the count of processes whose gradients fit, then the gradients.
_PARTS = 3
_FITS = 2 * _PARTS
_INLINE = 4096
_MAX_WORLD = 1024


def _header(digest: int) -> list[float]:
    values: list[float] = []
    for i in range(_PARTS):
        part = float((digest >> (16 * i)) & 0xFFFF)
        values += [part, part * part]
    return values


def _agree(summed: torch.Tensor, world_size: int) -> bool:
    return all(
        world_size * float(summed[2 * i + 1]) == float(summed[2 * i]) ** 2 for i in range(_PARTS)
    )


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

    def __call__(self, params: Iterable[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        """Reduce the gradients of ``params`` across the group, then step them all."""
        _require_process_group()
        named = self._named(params)
        stepped = [p for _, p in named]
        self._reduce(named)
        super().__call__(stepped, *args, **kwargs)

    @staticmethod
    def _named(params: Iterable[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        store = get_param_store()
        named = []
        for index, p in enumerate(params):
            name = store.param_name(p)
            named.append((f"<unnamed param #{index}>" if name is None else name, p))
        return sorted(named, key=lambda item: item[0])

    def _raise_mismatch(self, signature: list[tuple[str, tuple[int, ...], str]]) -> None:
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

    def _reduce(self, named: list[tuple[str, torch.Tensor]]) -> None:
        """Check the signature and reduce the gradients: one all-reduce, two if they do not fit."""
        signature = _signature(named)
        params = [p for _, p in named]
        world_size = torch_dist.get_world_size(self.group)
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        total = sum(g.numel() for g in grads)
        fits = total <= _INLINE and world_size <= _MAX_WORLD
        device = grads[0].device if grads else torch.device("cpu")
        first = torch.zeros(_FITS + 1 + _INLINE, dtype=torch.float64, device=device)
        first[:_FITS] = torch.tensor(_header(_digest(signature)), dtype=torch.float64)
        if fits:
            first[_FITS] = 1.0
            if grads:
                first[_FITS + 1 : _FITS + 1 + total] = torch.cat([g.reshape(-1) for g in grads]).to(torch.float64)
        torch_dist.all_reduce(first, op=torch_dist.ReduceOp.SUM, group=self.group)
        if not _agree(first, world_size):
            self._raise_mismatch(signature)
        if not grads:
            return
        # Equal signatures, so every process took the same branch (``fits`` depends on them only).
        if fits:
            flat = first[_FITS + 1 : _FITS + 1 + total]
        else:
            flat = torch.cat([g.reshape(-1) for g in grads])
            torch_dist.all_reduce(flat, op=torch_dist.ReduceOp.SUM, group=self.group)
        if self.average:
            flat = flat / world_size
        offset = 0
        for p, g in zip(params, grads):
            size = g.numel()
            p.grad = flat[offset : offset + size].view_as(g).to(g.dtype).clone()
            offset += size

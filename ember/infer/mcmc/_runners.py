"""Running chains: in this process (one after another, or vectorized as one batch) or in worker
processes. Each runner returns, per chain, the flat unconstrained draws ``(num_samples, D)``,
the kernel's diagnostics and per-draw statistics.
"""

from __future__ import annotations

import contextlib
import io
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.multiprocessing as mp

from ember._util import set_rng_seed
from ember.infer.mcmc._chains import ChainKernel
from ember.infer.mcmc.logger import ProgressBar
from ember.infer.mcmc.mcmc_kernel import MCMCKernel
from ember.infer.mcmc.potential import Layout

Hook = Callable[[MCMCKernel, dict[str, torch.Tensor], str, int], None]


@dataclass
class ChainResult:
    """What one chain (or one vectorized batch) hands back."""

    layout: Layout
    draws: torch.Tensor  # (num_chains_in_batch, num_samples, D)
    diagnostics: list[dict[str, Any]]
    stats: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per chain, each (num_samples,)
    transforms: dict[str, Any] = field(default_factory=dict)  # the kernel's, constrained -> unconstrained


def _stage(warmup: bool, chain: int | None) -> str:
    name = "Warmup" if warmup else "Sample"
    return name if chain is None else f"{name} [{chain}]"


def _split_diagnostics(diag: dict[str, Any], num_chains: int) -> list[dict[str, Any]]:
    if num_chains == 1:
        return [diag]
    return [{k: v[c] for k, v in diag.items()} for c in range(num_chains)]


def _stack_stats(records: list[dict[str, torch.Tensor]], num_chains: int) -> list[dict[str, torch.Tensor]]:
    if not records:
        return [{} for _ in range(num_chains)]
    keys = records[0].keys()
    stacked = {k: torch.stack([r[k] for r in records], dim=1) for k in keys}
    return [{k: v[c] for k, v in stacked.items()} for c in range(num_chains)]


@contextlib.contextmanager
def _fastest_threads(kernel: ChainKernel) -> Iterator[None]:
    """Run a chain on a small compiled potential with one intra-op thread.

    A leapfrog step of a small model is many microsecond-sized ops; waking a thread pool for
    any of them costs more than it saves (a 3-dim Dirichlet model ran 30x slower with 2
    threads than with 1 on a busy 2-core machine). ATen splits elementwise work only above
    32768 elements, so graphs whose tensors are all smaller lose nothing; larger models
    keep their threads.
    """
    threads = torch.get_num_threads()
    flat = kernel._flat
    small = flat is not None and flat.compiled and flat.max_numel < 32768
    if threads == 1 or not small:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


Report = Callable[[int, bool, dict[str, str]], None]


@dataclass
class _Run:
    """One run's lengths and callbacks, shared by the flat and the generic loop."""

    warmup_steps: int
    num_samples: int
    hook: Hook | None
    progress: ProgressBar | None
    chain_label: int | None
    report: Report | None
    sink: Callable[[torch.Tensor], None] | None

    def call_hook(self, kernel: MCMCKernel, params: dict[str, torch.Tensor], i: int, warm: bool) -> None:
        if self.hook is not None:
            self.hook(kernel, params, _stage(warm, self.chain_label), i if warm else i - self.warmup_steps)


def run_one(
    kernel: MCMCKernel,
    warmup_steps: int,
    num_samples: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    hook: Hook | None,
    progress: ProgressBar | None,
    chain_label: int | None,
    report: Report | None = None,
    sink: Callable[[torch.Tensor], None] | None = None,
) -> ChainResult:
    """Set up ``kernel`` and run it with whichever loop fits it.

    A flat kernel runs all its chains at once; any other :class:`MCMCKernel` runs through its
    public ``sample`` (dicts of tensors) and reports no progress to ``report``. With ``sink``
    each draw is handed to it and none is kept.
    """
    run = _Run(warmup_steps, num_samples, hook, progress, chain_label, report, sink)
    kernel.setup(warmup_steps, *args, **kwargs)
    if isinstance(kernel, ChainKernel):
        with _fastest_threads(kernel):
            return _run_flat_loop(kernel, run)
    return _run_generic_loop(kernel, run)


def _run_flat_loop(kernel: ChainKernel, run: _Run) -> ChainResult:
    layout = kernel._layout
    C = kernel._num_chains
    warmup_steps, progress, sink = run.warmup_steps, run.progress, run.sink
    draws = torch.empty(0 if sink else run.num_samples, C, layout.size, dtype=kernel._pe.dtype)
    total = warmup_steps + run.num_samples
    for i in range(total):
        warm = i < warmup_steps
        z = kernel._sample_flat()
        if not warm:
            if sink is None:
                draws[i - warmup_steps] = z
            else:
                sink(z)
        if run.hook is not None:
            run.call_hook(kernel, layout.unpack(z if C > 1 else z[0]), i, warm)
        if progress is not None and not progress.disable:
            if i == warmup_steps:
                for pos in range(len(progress.progress_bars)):
                    progress.set_description(_stage(False, run.chain_label if C == 1 else pos + 1), pos=pos)
            for pos in range(len(progress.progress_bars)):
                progress.set_postfix(kernel.logging(), pos=pos, refresh=False)
                progress.update(pos=pos)
        if run.report is not None and (i % 20 == 0 or i == total - 1):
            run.report(i, warm, kernel.logging())
    result = ChainResult(layout, draws.transpose(0, 1).contiguous(), _split_diagnostics(kernel.diagnostics(), C))
    result.stats = _stack_stats(kernel._draw_stats, C)
    result.transforms = dict(kernel.transforms or {})
    kernel.cleanup()
    return result


def _run_generic_loop(kernel: MCMCKernel, run: _Run) -> ChainResult:
    params = kernel.initial_params or {}
    layout = Layout({k: torch.Size(v.shape) for k, v in params.items()})
    rows = []
    for i in range(run.warmup_steps + run.num_samples):
        warm = i < run.warmup_steps
        params = kernel.sample(params)
        if not warm:
            row = layout.pack(params) if layout.names else torch.zeros(0)
            if run.sink is None:
                rows.append(row)
            else:
                run.sink(row[None])
        run.call_hook(kernel, params, i, warm)
        if run.progress is not None and not run.progress.disable:
            run.progress.set_postfix(kernel.logging(), refresh=False)
            run.progress.update()
    draws = torch.stack(rows)[None] if rows else torch.zeros(1, 0, layout.size)
    result = ChainResult(layout, draws, [kernel.diagnostics()], [{}], dict(getattr(kernel, "transforms", None) or {}))
    kernel.cleanup()
    return result


def _worker(
    chain: int,
    seed: int,
    kernel: MCMCKernel,
    initial_params: dict[str, torch.Tensor] | None,
    warmup_steps: int,
    num_samples: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    hook: Hook | None,
    dtype: torch.dtype,
    results: Any,
    logs: Any,
) -> None:
    torch.set_default_dtype(dtype)
    torch.set_num_threads(1)
    set_rng_seed(seed)
    try:
        if initial_params is not None:
            kernel.initial_params = initial_params
        if isinstance(kernel, ChainKernel):
            kernel._num_chains, kernel._seeds = 1, [seed]

        def report(i: int, warm: bool, info: dict[str, str]) -> None:
            logs.put((chain, i, warm, info))

        result = run_one(kernel, warmup_steps, num_samples, args, kwargs, hook, None, chain + 1, report)
        # Bytes, not tensors: torch's queues share tensor storage by file descriptor, which
        # fails once this process has exited.
        # Transforms do not survive pickling (their inverses are weak references); the parent
        # rebuilds them from the model.
        result.transforms = {}
        buffer = io.BytesIO()
        torch.save(result, buffer)
        results.put((chain, buffer.getvalue()))
    except BaseException as e:  # the parent re-raises it
        results.put((chain, e))


def run_processes(
    kernel: MCMCKernel,
    num_chains: int,
    seeds: list[int],
    initial_params: list[dict[str, torch.Tensor] | None],
    warmup_steps: int,
    num_samples: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    hook: Hook | None,
    mp_context: str | None,
    progress: ProgressBar,
) -> list[ChainResult]:
    """Run one chain per worker process; the workers are always joined or terminated."""
    ctx: Any = mp.get_context(mp_context) if mp_context else mp
    results = ctx.Queue()
    logs = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(c, seeds[c], kernel, initial_params[c], warmup_steps, num_samples, args, kwargs, hook,
                  torch.get_default_dtype(), results, logs),
            daemon=True,
        )
        for c in range(num_chains)
    ]
    collected: dict[int, ChainResult] = {}
    done = [0] * num_chains
    try:
        for w in workers:
            w.start()
        while len(collected) < num_chains:
            _drain(logs, progress, done, warmup_steps)
            try:
                chain, value = results.get(timeout=0.1)
            except queue.Empty:
                dead = [c for c, w in enumerate(workers) if not w.is_alive() and c not in collected and w.exitcode]
                if dead:
                    raise RuntimeError(f"MCMC worker process for chain {dead[0]} died with exit code {workers[dead[0]].exitcode}")
                continue
            if isinstance(value, BaseException):
                raise value
            collected[chain] = torch.load(io.BytesIO(value), weights_only=False)
        _drain(logs, progress, done, warmup_steps)
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
                w.join(timeout=5)
        results.close()
        logs.close()
    return [collected[c] for c in range(num_chains)]


def _drain(logs: Any, progress: ProgressBar, done: list[int], warmup_steps: int) -> None:
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        try:
            chain, i, warm, info = logs.get_nowait()
        except queue.Empty:
            return
        if progress.disable:
            continue
        if not warm and done[chain] <= warmup_steps:
            progress.set_description(f"Sample [{chain + 1}]", pos=chain)
        progress.set_postfix(info, pos=chain, refresh=False)
        progress.update(i + 1 - done[chain], pos=chain)
        done[chain] = i + 1

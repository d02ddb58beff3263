"""What the benchmark scripts share: timing one contender, interleaving rounds, the report.

Each script is run as ``python bench/<name>.py``, which puts ``bench/`` on ``sys.path``, so
they import this module as ``_common``.
"""

from __future__ import annotations

import gc
import platform
import time
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import pyro
import torch

import ember

_K = TypeVar("_K", bound=Hashable)


def time_per_call(step: Callable[[], object], inner: int) -> float:
    """Mean seconds per call over ``inner`` back-to-back calls, with the GC paused."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(inner):
            step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # queued device work counts towards its step
        return (time.perf_counter() - start) / inner
    finally:
        gc.enable()


def run_interleaved(jobs: dict[_K, Callable[[], object]], rounds: int, inner: int, warmup: int) -> dict[_K, list[float]]:
    """Time every job once per round, ``inner`` calls at a time, after ``warmup`` calls each.

    The order is rotated from round to round and reversed on odd rounds, so slow drift in the
    machine hits all contenders alike.

    :returns: each job's mean seconds per call, one entry per round.
    """
    for step in jobs.values():
        for _ in range(warmup):
            step()
    samples: dict[_K, list[float]] = {key: [] for key in jobs}
    keys = list(jobs)
    for r in range(rounds):
        shift = r % len(keys)
        order = keys[shift:] + keys[:shift]
        if r % 2:
            order.reverse()
        for key in order:
            samples[key].append(time_per_call(jobs[key], inner))
    return samples


def versions() -> str:
    """The library versions and threads a result was measured with, for a report's header."""
    return (
        f"torch {torch.__version__}, pyro-ppl {pyro.__version__}, ember {ember.__version__}, "
        f"python {platform.python_version()}, torch threads {torch.get_num_threads()}"
    )


def table(rows: Sequence[tuple[str, ...]]) -> str:
    """Right-aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)

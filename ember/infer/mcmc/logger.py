"""Progress bars for MCMC: one :mod:`tqdm` bar per chain, with the phase in the description and
the kernel's diagnostics (step size, acceptance probability) in the postfix.

Bars are silent with ``disable_progbar=True`` and when standard error is not a terminal (CI logs).
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

from tqdm.auto import tqdm

__all__ = ["DIAGNOSTIC_MSG", "ProgressBar"]

DIAGNOSTIC_MSG = "DIAGNOSTICS"
"""The message type Pyro's logger uses for per-step diagnostics."""


def _is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar:
    """Progress of ``num_bars`` chains over ``warmup_steps + num_samples`` steps each.

    :param warmup_steps: warmup steps per chain.
    :param num_samples: samples per chain.
    :param min_width: accepted for Pyro compatibility.
    :param max_width: accepted for Pyro compatibility.
    :param disable: no output at all.
    :param num_bars: one bar per chain.
    """

    def __init__(
        self,
        warmup_steps: int,
        num_samples: int,
        min_width: int = 80,
        max_width: int = 120,
        disable: bool = False,
        num_bars: int = 1,
    ) -> None:
        self.disable = disable or not _is_terminal()
        total = warmup_steps + num_samples
        self.progress_bars: list[Any] = []
        for i in range(num_bars):
            description = "Warmup" if num_bars == 1 else f"Warmup [{i + 1}]"
            self.progress_bars.append(
                tqdm(total=total, desc=description, position=i, file=sys.stderr, disable=self.disable, mininterval=0.2, leave=True)
            )

    def set_description(self, *args: Any, pos: int = 0, **kwargs: Any) -> None:
        """Set the description (the phase) of bar ``pos``."""
        if not self.disable:
            self.progress_bars[pos].set_description(*args, **kwargs)

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, pos: int = 0, **kwargs: Any) -> None:
        """Show the kernel's diagnostics after bar ``pos``."""
        if not self.disable:
            self.progress_bars[pos].set_postfix(ordered_dict, **kwargs)

    def update(self, n: int = 1, pos: int = 0) -> None:
        """Advance bar ``pos`` by ``n`` steps."""
        if not self.disable:
            self.progress_bars[pos].update(n)

    def close(self) -> None:
        """Close every bar."""
        for bar in self.progress_bars:
            bar.close()

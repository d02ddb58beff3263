"""pytest runs every page's ``>>>`` examples (``--doctest-glob=*.md``); this sets them up.

Each page starts like a test: validation on, an empty param store, a seeded RNG, one torch
thread (the examples are small: more threads only add overhead), and it must leave no
handler installed.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import torch

import ember
from ember.poutine import runtime

# conf.py configures Sphinx and _build holds its output: neither is a test module.
collect_ignore = ["conf.py", "_ext"]
collect_ignore_glob = ["_build/*"]


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ember.enable_validation(True)
    ember.clear_param_store()
    ember.set_rng_seed(0)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        ember.clear_param_store()
    assert runtime.get_stack() == (), "a page left handlers installed"

from __future__ import annotations

from typing import Iterator

import pytest
import torch

import ember
from ember.poutine import runtime


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Each test starts with validation on, an empty param store, a seeded RNG, and no handlers."""
    ember.enable_validation(True)
    ember.clear_param_store()
    ember.set_rng_seed(0)
    yield
    assert runtime.get_stack() == (), "a test left handlers installed"
    assert runtime._DIM_ALLOCATOR._stack == [], "a test left plate dims allocated"
    try:
        import pyro

        pyro.clear_param_store()
    except ImportError:  # pragma: no cover - pyro-ppl is a test dependency
        pass
    torch.set_default_dtype(torch.float32)

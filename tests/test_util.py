from __future__ import annotations

import random
import warnings

import pytest
import torch

from ember._util import get_rng_state, set_rng_seed, set_rng_state, warn_if_inf, warn_if_nan


def test_set_rng_seed_seeds_torch_random_and_numpy() -> None:
    np = pytest.importorskip("numpy")
    set_rng_seed(7)
    draws = (torch.rand(()), random.random(), np.random.rand())
    set_rng_seed(7)
    assert (torch.rand(()), random.random(), np.random.rand()) == draws


def test_rng_state_roundtrip_covers_all_generators() -> None:
    np = pytest.importorskip("numpy")
    state = get_rng_state()
    draws = (torch.rand(()), random.random(), np.random.rand())
    set_rng_state(state)
    assert (torch.rand(()), random.random(), np.random.rand()) == draws


def test_warn_if_nan_and_inf() -> None:
    with pytest.warns(UserWarning, match="Encountered NaN: x"):
        warn_if_nan(torch.tensor([0.0, float("nan")]), "x")
    with pytest.warns(UserWarning, match=r"Encountered \+inf: y"):
        warn_if_inf(torch.tensor(float("inf")), "y")
    with pytest.warns(UserWarning, match="Encountered -inf."):
        warn_if_inf(float("-inf"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_inf(torch.tensor(float("-inf")), "z", allow_neginf=True)
        warn_if_nan(torch.tensor(1.0))


def test_warn_if_nan_watches_gradients() -> None:
    x = torch.tensor(0.0, requires_grad=True)
    y = x * 1.0
    warn_if_nan(y, "y")
    with pytest.warns(UserWarning, match="Encountered NaN: backward y"):
        (y * float("nan")).backward()  # type: ignore[no-untyped-call]  # torch leaves backward unannotated

"""Saving the param store changes nothing live, and a failing ``param()`` leaves nothing behind."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.distributions import constraints

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import SVI, Trace_ELBO
from ember.optim import Adam

from tests.reliability._state import leaf_of, snapshot


def test_values_read_before_a_save_keep_working_after_it_and_the_save_loads_back(tmp_path: Path) -> None:
    store = ember.get_param_store()
    real = ember.param("real", torch.tensor([1.0, 2.0]))
    positive = ember.param("positive", torch.tensor(3.0), constraint=constraints.positive)
    ember.param("chol", torch.tensor([[1.0, 0.0], [0.5, 2.0]]), constraint=constraints.lower_cholesky)
    expected = {name: value.detach().clone() for name, value in store.items()}
    before = snapshot()
    store.get_state()
    store.save(tmp_path / "params.pt")
    pickle.dumps(store)
    assert snapshot() == before
    # The links still lead to the live leaves, and optimisation still finds them.
    assert leaf_of(real) is real and store.param_name(real) == "real"
    assert leaf_of(positive) is store._params["positive"]
    assert torch.allclose(positive, store._params["positive"].exp())
    # The file loads back into a fresh store with equal values and live links.
    ember.clear_param_store()
    store.load(tmp_path / "params.pt")
    for name, value in expected.items():
        loaded = ember.param(name)
        assert torch.allclose(loaded, value)
        assert leaf_of(loaded) is store._params[name]


def test_training_goes_on_after_a_save_with_the_same_leaves(tmp_path: Path) -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(1.0))

    def guide() -> None:
        ember.param("s", torch.tensor(1.0), constraint=constraints.positive)
        ember.param("m", torch.tensor(0.0))

    svi = SVI(model, guide, Adam({"lr": 0.1}), Trace_ELBO())
    svi.step()
    leaves = dict(ember.get_param_store().named_parameters())
    m_before = ember.param("m")
    ember.get_param_store().save(tmp_path / "params.pt")
    assert leaf_of(m_before) is leaves["m"]
    svi.step()
    assert dict(ember.get_param_store().named_parameters()) == leaves
    assert leaf_of(m_before) is leaves["m"]


def _subsampled_wrong_event_dim() -> None:
    with ember.plate("N", 10, subsample_size=2):
        ember.param("bad", torch.zeros(4), event_dim=0)


def _out_of_range_subsample() -> None:
    with ember.plate("N", 5, subsample=torch.tensor([0, 7])):
        ember.param("w", torch.zeros(5), event_dim=0)


@pytest.mark.parametrize(
    ("program", "error"),
    [(_subsampled_wrong_event_dim, ValueError), (_out_of_range_subsample, IndexError)],
    ids=["wrong event_dim in a subsampled plate", "out-of-range subsample index"],
)
def test_a_failing_param_call_leaves_nothing_in_the_store(program: Callable[[], None], error: type[Exception]) -> None:
    ember.param("kept", torch.tensor(1.0))
    before = snapshot()
    with pytest.raises(error):
        poutine.trace(program).get_trace()
    assert snapshot() == before
    assert list(ember.get_param_store().keys()) == ["kept"]

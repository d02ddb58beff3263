"""Persistence of :class:`ember.params.ParamStoreDict`: state dicts, files, scopes, pickling."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
from torch.distributions import constraints

from ember.params import ParamStoreDict
from ember.params.param_store import StateDict

from .test_param_store import assert_same_constraint, filled_store


def _assert_stores_equal(actual: ParamStoreDict, expected: ParamStoreDict) -> None:
    assert list(actual.keys()) == list(expected.keys())
    for name in expected.keys():
        assert torch.equal(actual._params[name].detach(), expected._params[name].detach())
        assert torch.equal(actual[name].detach(), expected[name].detach())
        assert_same_constraint(actual._constraints[name], expected._constraints[name])
        leaf = actual._params[name]
        assert leaf.requires_grad and actual.param_name(leaf) == name


def test_save_then_load_restores_every_value_constraint_and_name(tmp_path: Path) -> None:
    store = filled_store()
    for name in store.keys():
        store[name]  # leaves of real params now carry a self-weakref, which must not break saving
    path = tmp_path / "params.pt"
    store.save(path)
    loaded = ParamStoreDict()
    loaded.load(str(path), map_location="cpu")
    _assert_stores_equal(loaded, store)
    assert loaded._constraints["p0"] is constraints.real  # unpickled Real maps to the singleton
    assert loaded._params["p0"] is not store._params["p0"]


def test_load_merges_into_existing_params() -> None:
    source = ParamStoreDict()
    source["a"] = torch.tensor([1.0])
    target = ParamStoreDict()
    target["a"] = torch.tensor([0.0])
    target["b"] = torch.tensor([2.0])
    old_a = target._params["a"]
    target.set_state(source.get_state())
    assert list(target.keys()) == ["a", "b"]
    assert target._params["a"] is source._params["a"]
    assert target.param_name(old_a) is None


def test_get_state_copies_maps_and_leaves_the_live_links_which_pickle() -> None:
    store = filled_store()
    links = {name: getattr(store[name], "unconstrained") for name in store.keys()}
    state = store.get_state()
    assert set(state) == {"params", "constraints"}
    assert state["params"] == store._params and state["params"] is not store._params
    assert state["constraints"] == store._constraints
    # Unlike Pyro, which strips them from the live leaves: values read before stay usable.
    assert all(link() is store._params[name] for name, link in links.items())
    pickle.loads(pickle.dumps(state))


def test_set_state_maps_real_instances_to_the_singleton() -> None:
    store = ParamStoreDict()
    fresh_real = type(constraints.real)()
    state: StateDict = {"params": {"x": torch.zeros(1, requires_grad=True)}, "constraints": {"x": fresh_real}}
    store.set_state(state)
    assert store._constraints["x"] is constraints.real
    assert store.param_name(state["params"]["x"]) == "x"


def test_scope_swaps_state_in_and_out_and_records_new_params() -> None:
    store = ParamStoreDict()
    store.setdefault("outer", torch.tensor([1.0]), constraints.positive)
    outer_leaf = store._params["outer"]
    with store.scope() as first:
        assert len(store) == 0
        store.setdefault("inner", torch.tensor([2.0]))
    assert list(store.keys()) == ["outer"] and store._params["outer"] is outer_leaf
    assert store._constraints["outer"] is constraints.positive
    assert list(first["params"]) == ["inner"]
    with store.scope(first):
        assert list(store.keys()) == ["inner"]
        assert torch.allclose(store["inner"], torch.tensor([2.0]))
        store["inner2"] = torch.tensor([3.0])
    assert list(first["params"]) == ["inner", "inner2"]
    assert list(store.keys()) == ["outer"]


def test_scope_restores_outer_state_on_error_without_updating_scope_state() -> None:
    store = ParamStoreDict()
    store["outer"] = torch.zeros(1)
    state: StateDict = {"params": {}, "constraints": {}}
    with pytest.raises(RuntimeError, match="inside"):
        with store.scope(state):
            store["inner"] = torch.zeros(1)
            raise RuntimeError("inside")
    assert list(store.keys()) == ["outer"]
    assert state["params"] == {}


def test_store_pickles_and_deep_copies_with_a_fresh_lock() -> None:
    store = filled_store()
    for name in store.keys():
        store[name]
    for clone in (pickle.loads(pickle.dumps(store)), copy.deepcopy(store)):
        _assert_stores_equal(clone, store)
        assert clone._lock is not store._lock
        assert clone._params["p1"] is not store._params["p1"]
        clone["extra"] = torch.zeros(1)
        assert "extra" not in store

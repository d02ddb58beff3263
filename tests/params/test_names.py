"""The ``"$$$"`` module-name helpers, checked against Pyro's."""

from __future__ import annotations

import pyro.params
import pyro.params.param_store
import pytest

import ember.params
from ember.params import (
    module_from_param_with_module_name,
    param_with_module_name,
    user_param_name,
)
from ember.params.param_store import normalize_param_name

NAMES = ["weight", "encoder$$$fc.weight", "outer$$$inner$$$bias", "", "$$$", "a$$$", "$$$b", "a.b$c$$d"]


def test_helpers_build_and_split_module_param_names() -> None:
    full = param_with_module_name("encoder", "fc.weight")
    assert full == "encoder$$$fc.weight"
    assert module_from_param_with_module_name(full) == "encoder"
    assert user_param_name(full) == "fc.weight"
    assert normalize_param_name(full) == "encoder.fc.weight"
    assert user_param_name("weight") == module_from_param_with_module_name("weight") == "weight"


@pytest.mark.parametrize("name", NAMES)
def test_helpers_match_pyro(name: str) -> None:
    pyro_store = pyro.params.param_store
    assert module_from_param_with_module_name(name) == pyro_store.module_from_param_with_module_name(name)
    assert user_param_name(name) == pyro_store.user_param_name(name)
    assert normalize_param_name(name) == pyro_store.normalize_param_name(name)
    assert param_with_module_name(name, "w") == pyro_store.param_with_module_name(name, "w")


def test_package_exports_match_pyro_plus_the_store() -> None:
    assert sorted(ember.params.__all__) == sorted([*pyro.params.__all__, "ParamStoreDict"])
    assert "normalize_param_name" not in ember.params.__all__

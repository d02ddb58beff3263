from __future__ import annotations

import importlib

import pyro.poutine

import ember.poutine


def _public(module: object) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_")}


def test_every_public_name_of_pyro_poutine_exists_in_ember() -> None:
    missing = _public(pyro.poutine) - _public(ember.poutine)
    assert missing == set()


def test_all_lists_only_real_names_and_is_sorted() -> None:
    assert all(hasattr(ember.poutine, name) for name in ember.poutine.__all__)
    assert ember.poutine.__all__ == sorted(ember.poutine.__all__)


# Placeholders pyro.poutine.collapse_messenger defines when funsor is not installed; Ember's
# collapse needs no funsor, so they have no counterpart.
_FUNSOR_PLACEHOLDERS = {"Contraction", "Delta", "Funsor", "Variable"}


def test_pyro_module_paths_import_the_same_objects() -> None:
    for name in sorted(_public(pyro.poutine)):
        theirs = getattr(pyro.poutine, name)
        if type(theirs).__name__ != "module" or not (name.endswith("_messenger") or name == "guide"):
            continue
        ours = importlib.import_module(f"ember.poutine.{name}")
        defined_there = {
            attr
            for attr, obj in vars(theirs).items()
            if not attr.startswith("_")
            and attr not in _FUNSOR_PLACEHOLDERS
            and getattr(obj, "__module__", None) == theirs.__name__
        }
        missing = {attr for attr in defined_there if not hasattr(ours, attr)}
        assert missing == set(), f"ember.poutine.{name} lacks {sorted(missing)}"
        for attr in getattr(ours, "__all__", []):
            assert hasattr(ours, attr), f"ember.poutine.{name}.__all__ lists a missing {attr}"
    from ember.poutine.guide import GuideMessenger
    from ember.poutine.trace_messenger import TraceMessenger

    assert TraceMessenger is ember.poutine.TraceMessenger and GuideMessenger is ember.poutine.GuideMessenger

"""ember.settings: Pyro's registry (get, set, context, register) over Ember's validation flags."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pyro.settings
import pytest
import torch

import ember
from ember import settings
from ember.poutine import runtime


@pytest.fixture
def scratch_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("_ember_settings_scratch")
    module.THRESHOLD = 0.5  # type: ignore[attr-defined]  # a setting the test declares
    module.Holder = type("Holder", (), {"level": 3})  # type: ignore[attr-defined]  # as above
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]
    for alias in ("threshold", "holder_level"):
        settings._REGISTRY.pop(alias, None)


def test_the_validation_flags_are_registered_and_read_the_live_values() -> None:
    assert set(settings.get()) == {"validate_distributions_pyro", "validate_distributions_torch", "validate_infer", "validate_poutine"}
    assert set(settings.get()) <= set(pyro.settings.get())
    with ember.validation_enabled(False):
        assert not any(settings.get().values())
    assert settings.get("validate_infer") is runtime.is_infer_validation_enabled() is True


def test_set_writes_through_to_the_flags_ember_reads() -> None:
    with settings.context(validate_poutine=False, validate_distributions_torch=False):
        assert not runtime.is_validation_enabled()
        assert not torch.distributions.Distribution._validate_args
        assert runtime.is_infer_validation_enabled()
    assert runtime.is_validation_enabled() and torch.distributions.Distribution._validate_args


def test_context_restores_on_error_and_works_as_a_decorator() -> None:
    @settings.context(validate_infer=False)
    def read() -> bool:
        return runtime.is_infer_validation_enabled()

    assert read() is False and runtime.is_infer_validation_enabled()
    with pytest.raises(RuntimeError, match="boom"):
        with settings.context(validate_infer=False):
            raise RuntimeError("boom")
    assert runtime.is_infer_validation_enabled()


def test_register_declares_module_constants_and_class_attributes(scratch_module: types.ModuleType) -> None:
    settings.register("threshold", scratch_module.__name__, "THRESHOLD")
    settings.register("holder_level", scratch_module.__name__, "Holder.level")
    assert settings.get("threshold") == 0.5 and settings.get("holder_level") == 3
    settings.set(holder_level=4)
    assert scratch_module.Holder.level == 4


def test_a_registered_validator_checks_the_current_and_every_new_value(scratch_module: types.ModuleType) -> None:
    @settings.register("threshold", scratch_module.__name__, "THRESHOLD")
    def _positive(value: float) -> None:
        if not value > 0:
            raise ValueError(f"threshold must be positive, got {value}")

    with pytest.raises(ValueError, match="threshold must be positive, got -1"):
        settings.set(threshold=-1)
    assert settings.get("threshold") == 0.5
    with pytest.raises(TypeError, match="Expected a bool, got int"):
        settings.set(validate_infer=1)
    assert runtime.is_infer_validation_enabled() is True


def test_unknown_aliases_and_bad_names_are_refused() -> None:
    with pytest.raises(KeyError, match="Unknown setting 'nope'"):
        settings.get("nope")
    with pytest.raises(KeyError, match="Unknown setting 'nope'"):
        settings.set(nope=1)
    with pytest.raises(AssertionError, match="must be a Python identifier"):
        settings.register("not an identifier", __name__, "X")

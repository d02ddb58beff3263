"""Run one program through Ember and through pyro-ppl, and compare what comes out.

Every parity model is written once, as a function of a backend's ``(pyro, dist, poutine)``
namespaces. :func:`run_both` runs it with each backend after ``torch.manual_seed(seed)`` and
fresh param stores; both libraries draw from torch's global RNG in the same order, so the
draws (and hence every value, log density and shape) must agree.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import pyro
import pyro.distributions
import pyro.poutine
import pyro.poutine.plate_messenger
import torch

import ember
import ember.distributions
import ember.poutine
from ember.poutine import runtime

__all__ = [
    "BACKENDS",
    "EMBER",
    "PYRO",
    "Backend",
    "EmberState",
    "assert_same_error",
    "assert_same_value",
    "assert_traces_match",
    "frames",
    "run_both",
    "structure",
]

_T = TypeVar("_T")

# Values come from the same torch ops on the same draws; allow only float rounding noise.
_RTOL = 1e-5
_ATOL = 1e-6


@dataclass(frozen=True)
class Backend:
    """The namespaces a Pyro program imports, for one library.

    ``block_plate`` is separate because Pyro keeps it in ``pyro.poutine.plate_messenger``.
    """

    name: str
    pyro: Any
    dist: Any
    poutine: Any
    block_plate: Any

    @property
    def infer(self) -> Any:
        """The backend's ``infer`` package, imported on first use."""
        return importlib.import_module(f"{self.pyro.__name__}.infer")

    def clear_param_store(self) -> None:
        self.pyro.clear_param_store()

    def param_leaves(self) -> dict[str, torch.Tensor]:
        """The unconstrained leaf tensors of the param store, by name."""
        return dict(self.pyro.get_param_store().named_parameters())

    def __repr__(self) -> str:
        return self.name


EMBER = Backend("ember", ember, ember.distributions, ember.poutine, ember.poutine.block_plate)
PYRO = Backend("pyro", pyro, pyro.distributions, pyro.poutine, pyro.poutine.plate_messenger.block_plate)
BACKENDS = (EMBER, PYRO)


def run_both(program: Callable[[Backend], _T], seed: int = 0) -> tuple[_T, _T]:
    """Run ``program`` with Ember then Pyro, each after ``torch.manual_seed(seed)``.

    Both param stores are cleared before each run and validation is on in both libraries.
    """
    results: list[_T] = []
    for backend in BACKENDS:
        ember.clear_param_store()
        pyro.clear_param_store()
        ember.enable_validation(True)
        pyro.enable_validation(True)
        torch.manual_seed(seed)
        results.append(program(backend))
    return results[0], results[1]


# ---------------------------------------------------------------------------------------------
# Trace comparison


def _size(size: Any) -> Any:
    return int(size.item()) if isinstance(size, torch.Tensor) else size


def frames(site: Any) -> tuple[tuple[Any, ...], ...]:
    """A site's ``cond_indep_stack`` as plain ``(name, dim, size, counter, full_size)`` tuples."""
    return tuple(
        (f.name, f.dim, _size(f.size), f.counter, _size(getattr(f, "full_size", None)))
        for f in site.get("cond_indep_stack", ())
    )


def structure(tr: Any) -> list[tuple[Any, ...]]:
    """``(name, type, is_observed, frames)`` per node, in order."""
    return [(name, site["type"], site.get("is_observed"), frames(site)) for name, site in tr.nodes.items()]


def _describe_distribution(d: Any) -> tuple[Any, ...]:
    return (type(d).__name__, tuple(d.batch_shape), tuple(d.event_shape))


def assert_same_value(ours: Any, theirs: Any, where: str = "value") -> None:
    """Recursively compare a value Ember produced with the one Pyro produced.

    Tensors must agree in shape, dtype and values; a Python number is not a tensor;
    distributions are compared by class name, batch shape and event shape.
    """
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor), f"{where}: ember gave {type(ours).__name__}, pyro a tensor"
        assert ours.shape == theirs.shape, f"{where}: shape {tuple(ours.shape)} vs {tuple(theirs.shape)}"
        assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} vs {theirs.dtype}"
        if theirs.dtype == torch.bool or not theirs.is_floating_point():
            assert torch.equal(ours, theirs), f"{where}: {ours} vs {theirs}"
        else:
            same = torch.allclose(ours.detach(), theirs.detach(), rtol=_RTOL, atol=_ATOL, equal_nan=True)
            assert same, f"{where}: {ours} vs {theirs}"
    elif isinstance(theirs, torch.distributions.Distribution):
        assert isinstance(ours, torch.distributions.Distribution), f"{where}: ember gave {ours!r}"
        assert _describe_distribution(ours) == _describe_distribution(theirs), where
    elif isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} vs {type(theirs).__name__}"
        assert len(ours) == len(theirs), f"{where}: length {len(ours)} vs {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_value(a, b, f"{where}[{i}]")
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{where}: ember gave {type(ours).__name__}, pyro a dict"
        assert sorted(ours) == sorted(theirs), f"{where}: keys {sorted(ours)} vs {sorted(theirs)}"
        for key in theirs:
            assert_same_value(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, bool) or theirs is None:
        assert ours is theirs, f"{where}: {ours!r} vs {theirs!r}"
    elif isinstance(theirs, float):
        assert isinstance(ours, float), f"{where}: ember gave {ours!r}, pyro the float {theirs!r}"
        assert math.isclose(ours, theirs, rel_tol=_RTOL, abs_tol=_ATOL), f"{where}: {ours} vs {theirs}"
    elif isinstance(theirs, (int, str)):
        assert type(ours) is type(theirs), f"{where}: {ours!r} vs {theirs!r}"
        assert ours == theirs, f"{where}: {ours!r} vs {theirs!r}"
    else:
        # Other objects (a plate's ``_Subsample`` fn, constraints): same class name and the
        # same public attributes that both sides have.
        assert type(ours).__name__ == type(theirs).__name__, f"{where}: {ours!r} vs {theirs!r}"
        for attr in ("size", "subsample_size", "event_dim"):
            if hasattr(theirs, attr):
                assert_same_value(getattr(ours, attr, None), getattr(theirs, attr), f"{where}.{attr}")


def assert_traces_match(ours: Any, theirs: Any, *, check_log_prob: bool = True) -> None:
    """Ember's trace ``ours`` equals Pyro's ``theirs`` in structure, values and shapes.

    Compares node names in order, ``type``, ``is_observed``, plate frames, values, ``scale``,
    ``mask``, ``infer``, distribution shapes, ``format_shapes()`` and (when
    ``check_log_prob``) ``log_prob_sum()``, then ``format_shapes()`` and per-site ``log_prob``
    after ``compute_log_prob()``.
    """
    assert list(ours.nodes) == list(theirs.nodes)
    assert structure(ours) == structure(theirs)
    for name, theirs_site in theirs.nodes.items():
        ours_site = ours.nodes[name]
        kind = theirs_site["type"]
        if kind in ("args", "input"):
            assert_same_value(ours_site["args"], theirs_site["args"], f"{name}.args")
            assert_same_value(ours_site["kwargs"], theirs_site["kwargs"], f"{name}.kwargs")
            continue
        assert_same_value(ours_site["value"], theirs_site["value"], f"{name}.value")
        if kind == "return":
            continue
        assert sorted(ours_site) == sorted(theirs_site), f"{name}: node keys {sorted(ours_site)} vs {sorted(theirs_site)}"
        for key in ("name", "done", "stop", "continuation", "args", "kwargs"):
            assert_same_value(ours_site.get(key), theirs_site.get(key), f"{name}.{key}")
        assert_same_value(ours_site["scale"], theirs_site["scale"], f"{name}.scale")
        assert_same_value(ours_site["mask"], theirs_site["mask"], f"{name}.mask")
        assert_same_value(dict(ours_site["infer"]), dict(theirs_site["infer"]), f"{name}.infer")
        if kind == "sample":
            assert_same_value(ours_site["fn"], theirs_site["fn"], f"{name}.fn")
    assert ours.format_shapes() == theirs.format_shapes()
    if not check_log_prob:
        return
    ours_sum, theirs_sum = ours.log_prob_sum(), theirs.log_prob_sum()
    if isinstance(theirs_sum, float) or isinstance(ours_sum, float):
        # Deliberate departure: with no sample site Ember sums to a zero tensor, Pyro to 0.0.
        assert float(ours_sum) == float(theirs_sum) == 0.0, f"log_prob_sum: {ours_sum} vs {theirs_sum}"
    else:
        assert_same_value(ours_sum, theirs_sum, "log_prob_sum")
    ours.compute_log_prob()
    theirs.compute_log_prob()
    assert ours.format_shapes() == theirs.format_shapes()
    for name, theirs_site in theirs.nodes.items():
        ours_site = ours.nodes[name]
        assert sorted(ours_site) == sorted(theirs_site), f"{name}: node keys {sorted(ours_site)} vs {sorted(theirs_site)}"
        if "log_prob" in theirs_site:
            assert_same_value(ours.nodes[name]["log_prob"], theirs_site["log_prob"], f"{name}.log_prob")


# ---------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class EmberState:
    """Ember's global state that a failed program must leave as it found it."""

    stack: tuple[Any, ...]
    plates: list[str | None]
    params: list[str]

    @staticmethod
    def capture() -> EmberState:
        store = ember.get_param_store()
        return EmberState(runtime.get_stack(), list(runtime._DIM_ALLOCATOR._stack), sorted(dict(store.items())))


def _lines_in_order(needle: str, haystack: str) -> bool:
    """Each line of ``needle`` is a substring of a later line of ``haystack`` than the last."""
    remaining = haystack.split("\n")
    for line in needle.split("\n"):
        while remaining and line not in remaining[0]:
            remaining.pop(0)
        if not remaining:
            return False
        remaining.pop(0)
    return True


def assert_same_error(program: Callable[[Backend], object], seed: int = 0) -> tuple[BaseException, BaseException]:
    """Both backends raise the same exception type; Pyro's text is kept in Ember's.

    Ember may add detail: every line of Pyro's message must appear, in order, inside a line
    of Ember's. Afterwards Ember's handler stack and plate allocator must be as before, and
    its param store must hold the same names as Pyro's (params created before the error stay),
    except the one param whose creating call failed, which Ember rolls back.
    Returns ``(ember_error, pyro_error)``.
    """
    errors: list[BaseException] = []
    param_names: list[list[str]] = []
    ember_before: EmberState | None = None
    ember_after: EmberState | None = None
    for backend in BACKENDS:
        ember.clear_param_store()
        pyro.clear_param_store()
        ember.enable_validation(True)
        pyro.enable_validation(True)
        torch.manual_seed(seed)
        if backend is EMBER:
            ember_before = EmberState.capture()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program(backend)
        except Exception as e:  # the error under test
            errors.append(e)
        else:
            raise AssertionError(f"{backend.name} raised nothing")
        if backend is EMBER:
            ember_after = EmberState.capture()
        param_names.append(sorted(backend.pyro.get_param_store().keys()))
    ours, theirs = errors
    # Ember's error for bad input may also be a ValueError (runtime.value_error_like): a subclass.
    assert isinstance(ours, type(theirs)), f"ember raised {type(ours).__name__}: {ours}; pyro {type(theirs).__name__}"
    assert ember_before is not None and ember_after is not None
    assert ember_after.stack == ember_before.stack, "ember left handlers installed after the error"
    assert ember_after.plates == ember_before.plates, "ember left plate dims allocated after the error"
    # Pyro keeps the param whose creating call failed; Ember rolls that one back.
    dropped = set(param_names[1]) - set(ember_after.params)
    assert set(ember_after.params) <= set(param_names[1]) and len(dropped) <= 1, (
        "ember's param store differs from pyro's after the error"
    )
    ours_text, theirs_text = _message(ours), _message(theirs)
    assert _lines_in_order(theirs_text, ours_text), f"pyro's message\n{theirs_text!r}\nnot in ember's\n{ours_text!r}"
    return ours, theirs


def _message(error: BaseException) -> str:
    # KeyError's str() is the repr of its key; compare the key text.
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def squash_addresses(text: str) -> str:
    """Replace ``0x...`` object addresses, which differ between runs."""
    return re.sub(r"0x[0-9a-f]+", "0x?", text)

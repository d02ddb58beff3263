"""Property tests: random programs under random handler stacks behave as in pyro-ppl.

Each hypothesis example is a :class:`~tests.poutine._random_models.Case`: a random model
(sample, param and factor sites, nested plates with automatic or explicit dims and subsampling,
``mask`` and ``scale`` blocks, ``block_plate``) and a random stack of handlers, built once
as data and run with Ember and with Pyro after the same seed. The traces must agree node by
node (names in order, type, ``is_observed``, value, ``scale``, ``mask``, plate frames,
``infer``), in ``log_prob_sum`` and in ``format_shapes()`` before and after
``compute_log_prob()``; warnings must agree; where Pyro raises, Ember raises the same type.

The classic properties at the end check laws of single handlers in both libraries:
applying block, replay or trace twice (each time a fresh handler) changes nothing, and
trace gives the same record whether it sits outside or inside condition, do or replay.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Any

import pyro
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import ember
from ember.poutine import runtime
from tests.parity._backends import BACKENDS, EMBER, PYRO, Backend, assert_traces_match
from tests.poutine._random_models import (
    Case,
    HandlerSpec,
    Model,
    apply_handlers,
    cases,
    handlers,
    interpret,
    models,
    run_case,
)


def _settings(max_examples: int) -> settings:
    # derandomize: CI draws the same examples on every run; no example database either.
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@dataclass
class Outcome:
    """What one backend's run of a case produced."""

    trace: Any
    error: BaseException | None
    warnings: list[tuple[str, str]]


def _fresh(seed: int) -> None:
    ember.clear_param_store()
    pyro.clear_param_store()
    ember.enable_validation(True)
    pyro.enable_validation(True)
    torch.manual_seed(seed)


def _record(program: Any) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = program(), None
        except Exception as e:  # compared with the other backend's
            result, error = None, e
    seen = [
        (w.category.__name__, _sort_listed_names(str(w.message)))
        for w in caught
        if issubclass(w.category, (UserWarning, RuntimeWarning))
        # Ember's warnings about data a handler never used go beyond Pyro, which is silent.
        and "Ember warns where Pyro silently ignores them" not in str(w.message)
    ]
    return Outcome(result, error, seen)


def _sort_listed_names(text: str) -> str:
    # Both libraries list names from a set in some warnings; the order follows string hashing.
    return re.sub(r"\[([^\]]*)\]", lambda m: "[" + ", ".join(sorted(m.group(1).split(", "))) + "]", text)


def _run_backends(case: Case) -> tuple[Outcome, Outcome]:
    outcomes = []
    for backend in BACKENDS:
        _fresh(case.seed)
        outcomes.append(_record(functools.partial(run_case, backend, case)))
        if backend is EMBER:
            assert runtime.get_stack() == (), "ember left handlers installed"
            assert runtime._DIM_ALLOCATOR._stack == [], "ember left plate dims allocated"
    return outcomes[0], outcomes[1]


def _lines_in_order(needle: str, haystack: str) -> bool:
    """Each line of ``needle`` lies inside a line of ``haystack``, in order."""
    lines = iter(haystack.split("\n"))
    return all(any(part in line for line in lines) for part in needle.split("\n"))


def _assert_same_error(ours: BaseException | None, theirs: BaseException | None) -> None:
    assert theirs is not None
    assert ours is not None, f"pyro raised {type(theirs).__name__}: {theirs}; ember raised nothing"
    assert type(ours) is type(theirs), f"ember raised {type(ours).__name__}: {ours}\npyro {type(theirs).__name__}: {theirs}"
    # Ember may add detail, but every line of Pyro's message appears, in order, in Ember's.
    assert _lines_in_order(str(theirs), str(ours)), f"pyro's message\n{theirs}\nnot in ember's\n{ours}"


def _log_prob_sum(tr: Any) -> Outcome:
    return _record(tr.log_prob_sum)


def check_case(case: Case) -> None:
    """Run ``case`` with both backends and compare everything they produced."""
    ours, theirs = _run_backends(case)
    # Shown by ``pytest --hypothesis-show-statistics``: how often each path is exercised.
    event("error" if theirs.error is not None else "ran", type(theirs.error).__name__ if theirs.error else "ok")
    if theirs.error is not None:
        _assert_same_error(ours.error, theirs.error)
        event("pyro error", str(theirs.error).split("\n")[0][:70])
        return
    event("recorded sites", str(min(len(theirs.trace.nodes), 8)))
    assert ours.error is None, f"ember raised {type(ours.error).__name__}: {ours.error}; pyro did not"
    assert ours.warnings == theirs.warnings
    ours_sum, theirs_sum = _log_prob_sum(ours.trace), _log_prob_sum(theirs.trace)
    if theirs_sum.error is not None:
        _assert_same_error(ours_sum.error, theirs_sum.error)
        assert_traces_match(ours.trace, theirs.trace, check_log_prob=False)
        return
    assert ours_sum.error is None, f"ember's log_prob_sum raised {ours_sum.error!r}; pyro's did not"
    assert ours_sum.warnings == theirs_sum.warnings
    assert_traces_match(ours.trace, theirs.trace)
    if case.graph_type == "dense":
        assert sorted(ours.trace.edges) == sorted(theirs.trace.edges)


@_settings(400)
@given(cases())
def test_random_programs_under_random_handler_stacks_match_pyro(case: Case) -> None:
    check_case(case)


# ---------------------------------------------------------------------------------------------
# Classic properties, checked in both libraries


def _outcome(backend: Backend, seed: int, program: Any) -> Outcome:
    torch.manual_seed(seed)
    outcome = _record(program)
    if backend is EMBER:
        assert runtime.get_stack() == () and runtime._DIM_ALLOCATOR._stack == []
    return outcome


def _assert_same_outcome(first: Outcome, second: Outcome) -> None:
    if first.error is not None or second.error is not None:
        assert type(first.error) is type(second.error), (first.error, second.error)
        return
    assert_traces_match(first.trace, second.trace)


def _reference(backend: Backend, model: Model, seed: int) -> tuple[Any, Any]:
    """The backend's model function and a reference trace of it, after fresh state."""
    _fresh(seed)
    fn = functools.partial(interpret, model, backend)
    return fn, _record(backend.poutine.trace(fn).get_trace).trace


def _traced(backend: Backend, stack: tuple[HandlerSpec, ...], fn: Any, ref: Any) -> Any:
    return backend.poutine.trace(apply_handlers(backend, stack, fn, ref)).get_trace


def _inner_trace(backend: Backend, spec: HandlerSpec, fn: Any, ref: Any) -> Any:
    """The trace recorded by ``trace`` sitting *inside* ``spec``'s handler."""
    traced = backend.poutine.trace(fn)

    def program() -> Any:
        apply_handlers(backend, (spec,), traced, ref)()
        return traced.trace

    return program


@pytest.mark.parametrize("kind", ["block", "replay", "trace"])
@_settings(30)
@given(model=models(), data=st.data())
def test_applying_a_fresh_handler_twice_equals_applying_it_once(kind: str, model: Model, data: st.DataObject) -> None:
    spec = data.draw(handlers(model, (kind,)))
    for backend in BACKENDS:
        fn, ref = _reference(backend, model, 0)
        if ref is None:
            return  # the model itself is invalid; its error is compared with Pyro's above
        once = _outcome(backend, 1, _traced(backend, (spec,), fn, ref))
        twice = _outcome(backend, 1, _traced(backend, (spec, spec), fn, ref))
        _assert_same_outcome(once, twice)


@pytest.mark.parametrize("kind", ["condition", "replay"])
@_settings(30)
@given(model=models(), data=st.data())
def test_trace_outside_or_inside_a_handler_records_the_same(kind: str, model: Model, data: st.DataObject) -> None:
    spec = data.draw(handlers(model, (kind,)))
    for backend in BACKENDS:
        fn, ref = _reference(backend, model, 0)
        if ref is None:
            return
        outside = _outcome(backend, 1, _traced(backend, (spec,), fn, ref))
        inside = _outcome(backend, 1, _inner_trace(backend, spec, fn, ref))
        _assert_same_outcome(outside, inside)


@_settings(30)
@given(model=models(), data=st.data())
def test_trace_outside_do_records_the_inside_record_less_the_counterfactual_sites(model: Model, data: st.DataObject) -> None:
    spec = data.draw(handlers(model, ("do",)))
    intervened = [f"{name}__CF" for name in spec.arg("names")]
    for backend in BACKENDS:
        fn, ref = _reference(backend, model, 0)
        if ref is None:
            return
        outside = _outcome(backend, 1, _traced(backend, (spec,), fn, ref))
        inside = _outcome(backend, 1, _inner_trace(backend, spec, fn, ref))
        if inside.trace is not None:
            assert [n for n in inside.trace.nodes if n.endswith("__CF")] == [n for n in inside.trace.nodes if n in intervened]
            assert sorted(n for n in inside.trace.nodes if n.endswith("__CF")) == sorted(intervened)
            for name in intervened:
                inside.trace.remove_node(name)
        _assert_same_outcome(outside, inside)


# ---------------------------------------------------------------------------------------------
# Differences from Pyro that the random programs found, kept as minimal reproducers


def _latent_a(pyro_: Any, dist: Any) -> Any:
    return pyro_.sample("a", dist.Normal(0.0, 1.0))


def test_condition_to_none_outside_replay_raises_like_pyro() -> None:
    def program(b: Backend) -> Any:
        fn = functools.partial(_latent_a, b.pyro, b.dist)
        ref = b.poutine.trace(fn).get_trace()
        return b.poutine.trace(b.poutine.condition(b.poutine.replay(fn, trace=ref), data={"a": None})).get_trace()

    _fresh(0)
    with pytest.raises(AssertionError):
        program(PYRO)
    _fresh(0)
    with pytest.raises(AssertionError):
        program(EMBER)

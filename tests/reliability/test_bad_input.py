"""Bad input, in one table: the error type, a message naming the culprit, and no state left behind.

Each case runs at the top level and again nested inside an outer handler and plate; either
way it must raise the listed type(s) (Pyro's where Pyro raises, and ``ValueError``), with a
message naming the site, plate or argument, and leave the handler stack, the plate dims and
the param store exactly as they were. The first block is what Ember now makes loud (Pyro is
silent or fails later with a bare error); the second, bad input Ember already rejected.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch.distributions import constraints

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import Predictive, Trace_ELBO
from ember.poutine.runtime import value_error_like

from tests.reliability._state import snapshot


@dataclass(frozen=True)
class Case:
    program: Callable[[], object]
    types: tuple[type[BaseException], ...]
    names: tuple[str, ...]


def _traced(model: Callable[[], object]) -> Callable[[], object]:
    return lambda: poutine.trace(model).get_trace()


def _param(init: torch.Tensor, constraint: constraints.Constraint) -> Callable[[], object]:
    return _traced(lambda: ember.param("q", init, constraint=constraint))


def _plate(**kwargs: Any) -> Callable[[], object]:
    def model() -> None:
        with ember.plate("p", **kwargs):
            ember.sample("x", dist.Normal(0.0, 1.0))

    return _traced(model)


def _bad_mask() -> None:
    with ember.plate("p", 3):
        with poutine.mask(mask=torch.tensor([True, False])):
            ember.sample("x", dist.Normal(0.0, 1.0))


def _bogus_enumeration() -> None:
    ember.sample("b", dist.Bernoulli(0.5), infer={"enumerate": "bogus"})


def _model() -> None:
    ember.sample("a", dist.Normal(0.0, 1.0))
    ember.sample("b", dist.Normal(0.0, 1.0))


def _disagreeing_samples() -> object:
    return Predictive(_model, posterior_samples={"a": torch.zeros(3), "b": torch.zeros(4)})


def _duplicate_site() -> None:
    ember.sample("x", dist.Normal(0.0, 1.0))
    ember.sample("x", dist.Normal(0.0, 1.0))


def _duplicate_plate() -> None:
    with ember.plate("p", 2), ember.plate("p", 3):
        pass


def _colliding_plates() -> None:
    with ember.plate("p", 2, dim=-1), ember.plate("r", 3, dim=-1):
        pass


def _shape_mismatch_in_plate() -> None:
    with ember.plate("p", 3):
        ember.sample("x", dist.Normal(torch.zeros(2), 1.0))


def _bad_param_shape_in_plate() -> None:
    with ember.plate("N", 10, subsample_size=2):
        ember.param("bad", torch.zeros(4), event_dim=0)


def _bad_obs_mask() -> None:
    with ember.plate("N", 3):
        ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.zeros(3), obs_mask=torch.tensor([True, False]))


def _not_a_distribution() -> None:
    ember.sample("x", torch.tensor(1.0))  # type: ignore[arg-type]  # the bad input under test


def _unnamed_site() -> None:
    ember.sample(None, dist.Normal(0.0, 1.0))  # type: ignore[arg-type]  # the bad input under test


_EMPTY_INTERVAL = constraints.interval(1.0, 0.0)  # type: ignore[no-untyped-call]  # torch leaves it unannotated

BEYOND_PYRO: dict[str, Case] = {
    "param init below a positive constraint": Case(
        _param(torch.tensor(-1.0), constraints.positive), (ValueError,), ("'q'", "GreaterThan", "-1.")
    ),
    "param init off the simplex with a negative weight": Case(
        _param(torch.tensor([-0.5, 1.5]), constraints.simplex), (ValueError,), ("'q'", "Simplex", "-0.5")
    ),
    "param init in an empty interval(1, 0)": Case(
        _param(torch.tensor(0.5), _EMPTY_INTERVAL), (ValueError,), ("'q'", "Interval", "0.5")
    ),
    "param init with a negative Cholesky diagonal": Case(
        _param(torch.tensor([[-1.0, 0.0], [0.3, 1.0]]), constraints.lower_cholesky),
        (ValueError,),
        ("'q'", "LowerCholesky", "-1."),
    ),
    "unknown enumeration strategy": Case(
        lambda: poutine.trace(poutine.enum(_bogus_enumeration, first_available_dim=-1)).get_trace(),
        (ValueError,),
        ("'b'", "'bogus'"),
    ),
    "non-integer plate size": Case(_plate(size=2.5), (ValueError,), ("'p'", "2.5")),
    "plate size 0": Case(_plate(size=0), (ZeroDivisionError, ValueError), ("'p'", "zero")),
    "negative plate size": Case(_plate(size=-1), (RuntimeError, ValueError), ("'p'", "-1")),
    "subsample_size 0": Case(_plate(size=5, subsample_size=0), (ZeroDivisionError, ValueError), ("'p'", "subsample_size")),
    "subsample_size above size": Case(_plate(size=5, subsample_size=7), (ValueError,), ("'p'", "subsample_size", "7")),
    "subsample index out of range": Case(
        _plate(size=5, subsample=torch.tensor([0, 7])), (IndexError, ValueError), ("'p'", "[7]", "(2,)")
    ),
    "mask not broadcasting with the batch shape": Case(
        _traced(_bad_mask), (RuntimeError, ValueError), ("'x'", "'p'", "(2,)", "3)")
    ),
    "ELBO(num_particles=0)": Case(lambda: Trace_ELBO(num_particles=0), (ValueError,), ("num_particles", "0")),
    "Predictive(num_samples=0)": Case(
        lambda: Predictive(_model, num_samples=0), (ZeroDivisionError, ValueError), ("num_samples", "0")
    ),
    "Predictive(num_samples=-1)": Case(
        lambda: Predictive(_model, num_samples=-1), (RuntimeError, ValueError), ("num_samples", "-1")
    ),
    "Predictive(num_samples=2.5)": Case(
        lambda: Predictive(_model, num_samples=2.5), (TypeError, ValueError), ("num_samples", "2.5")  # type: ignore[arg-type]  # the bad input under test
    ),
    "Predictive posterior_samples with disagreeing leading dims": Case(
        _disagreeing_samples, (RuntimeError, ValueError), ("posterior_samples", "'a': (3,)", "'b': (4,)")
    ),
    "unnamed sample site": Case(_traced(_unnamed_site), (ValueError,), ("None",)),
}

ALREADY_LOUD: dict[str, Case] = {
    "duplicate sample site": Case(_traced(_duplicate_site), (RuntimeError,), ("'x'",)),
    "duplicate plate": Case(_duplicate_plate, (ValueError,), ("'p'",)),
    "colliding plate dims": Case(_traced(_colliding_plates), (ValueError,), ('"r"', '"p"', "dim=-1")),
    "non-negative plate dim": Case(_plate(size=2, dim=0), (ValueError,), ("dim", "0")),
    "batch shape disagreeing with a plate": Case(_traced(_shape_mismatch_in_plate), (ValueError,), ("site x", "plate('p')")),
    "param shape disagreeing with a subsampled plate": Case(
        _traced(_bad_param_shape_in_plate), (ValueError,), ("bad", "N", "event_dim=0")
    ),
    "obs_mask of the wrong shape": Case(_traced(_bad_obs_mask), (ValueError,), ("'y'", "obs_mask", "(2,)")),
    "sample from a non-distribution": Case(_traced(_not_a_distribution), (TypeError,), ("'x'",)),
    "non-callable to a handler": Case(lambda: poutine.trace(42), (ValueError,), ("42", "not callable")),  # type: ignore[call-overload]  # the bad input under test
    "non-positive scale": Case(lambda: poutine.scale(scale=-1.0), (ValueError,), ("scale", "-1")),
    "non-bool mask": Case(lambda: poutine.mask(mask=torch.tensor([1.0])), (ValueError,), ("mask", "BoolTensor")),
    "unknown param without an init": Case(_traced(lambda: ember.param("nope")), (KeyError,), ("nope",)),
    "unknown trace graph type": Case(lambda: poutine.trace(graph_type="bogus"), (AssertionError,), ("bogus",)),
    "replay with neither trace nor params": Case(lambda: poutine.replay(_model), (ValueError,), ("trace", "params")),
    "subsample_size disagreeing with subsample": Case(
        _plate(size=5, subsample_size=2, subsample=torch.tensor([0, 1, 2])), (ValueError,), ("subsample_size", "2", "3")
    ),
}

CASES = {**BEYOND_PYRO, **ALREADY_LOUD}


@contextmanager
def _at_top_level() -> Iterator[None]:
    yield


@contextmanager
def _nested() -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(poutine.block())
        stack.enter_context(ember.plate("outer", 2, dim=-6))
        yield


@pytest.mark.parametrize("where", [_at_top_level, _nested], ids=["top level", "nested"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_raises_its_type_names_the_culprit_and_leaves_no_state(
    case_id: str, where: Callable[[], Any]
) -> None:
    case = CASES[case_id]
    ember.param("existing", torch.tensor(1.0), constraint=constraints.positive)
    with where():
        before = snapshot()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(case.types[0]) as info:
                case.program()
        after = snapshot()
    for expected in case.types:
        assert isinstance(info.value, expected), f"{type(info.value).__name__} is no {expected.__name__}"
    message = str(info.value)
    for name in case.names:
        assert name in message, f"{name!r} not in {message!r}"
    assert after == before


def test_errors_that_are_also_value_errors_pickle_and_keep_pyros_type_name() -> None:
    import pickle

    for pyro_type in (ZeroDivisionError, RuntimeError, TypeError, IndexError):
        error = value_error_like(pyro_type, "m")
        loaded = pickle.loads(pickle.dumps(error))
        assert isinstance(loaded, pyro_type) and isinstance(loaded, ValueError) and str(loaded) == "m"


def _conditioned(model: Callable[[], object]) -> Callable[[], object]:
    return poutine.condition(model, data={"a": torch.tensor(0.0), "zz": torch.tensor(1.0), "yy": None})


UNUSED: dict[str, tuple[Callable[[], object], str]] = {
    "condition": (lambda: _conditioned(_model)(), "['yy', 'zz']"),
    "condition with a trace": (
        lambda: poutine.condition(_model, data=poutine.trace(lambda: ember.sample("c", dist.Normal(0.0, 1.0))).get_trace())(),
        "['c']",
    ),
    "substitute": (
        lambda: poutine.substitute(lambda: ember.param("w", torch.tensor(0.0)), data={"w": torch.tensor(1.0), "v": torch.tensor(1.0)})(),
        "['v']",
    ),
    "replay": (
        lambda: poutine.replay(_model, trace=poutine.trace(lambda: ember.sample("c", dist.Normal(0.0, 1.0))).get_trace())(),
        "['c']",
    ),
    "replay params": (lambda: poutine.replay(_model, params={"w": torch.tensor(1.0)})(), "['w']"),
    "do": (lambda: poutine.do(_model, data={"a": torch.tensor(1.0), "zz": torch.tensor(1.0)})(), "['zz']"),
}


@pytest.mark.parametrize("case_id", list(UNUSED))
def test_data_for_sites_a_run_never_reaches_warns_once_listing_them(case_id: str) -> None:
    program, listed = UNUSED[case_id]
    before = snapshot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        program()
    messages = [str(w.message) for w in caught if listed in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]
    assert caught[0].filename == __file__  # attributed to the user's line
    assert snapshot() == before


def test_a_shared_conditioned_model_warns_once_per_call_and_not_when_all_names_are_used() -> None:
    shared = _conditioned(_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            shared()
    assert len([w for w in caught if "['yy', 'zz']" in str(w.message)]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poutine.condition(_model, data={"a": torch.tensor(0.0)})()
        poutine.replay(_model, trace=poutine.trace(_model).get_trace())()
        with ember.validation_enabled(False):
            _conditioned(_model)()

"""The helpers of ``ember.poutine.util`` against ``pyro.poutine.util``."""

from __future__ import annotations

from typing import Any, Callable

import pyro.distributions
import pyro.poutine
import pyro.poutine.util
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine import util
from ember.poutine.message import Message, new_message
from ember.poutine.trace_struct import Trace
from tests.parity._backends import Backend, assert_same_value, assert_traces_match, run_both


def backend_model(b: Backend) -> None:
    b.pyro.param("p", torch.tensor(0.5))
    with b.pyro.plate("N", 10, subsample_size=3):
        b.pyro.sample("x", b.dist.Normal(0.0, 1.0))
    b.pyro.factor("f", torch.tensor(-1.0))
    b.pyro.sample("o", b.dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))
    with b.pyro.plate("M", 2):
        b.pyro.sample("c", b.dist.Bernoulli(0.5))


def _trace(b: Backend, graph_type: str = "flat") -> Any:
    return b.poutine.trace(lambda: backend_model(b), graph_type=graph_type).get_trace()


# --- site predicates and pruning -----------------------------------------------------------------


def test_site_predicates_match_pyro() -> None:
    def program(b: Backend) -> Any:
        tr = _trace(b)
        sites = [(name, site) for name, site in tr.nodes.items() if site["type"] in ("sample", "param")]
        return (
            {name: b.poutine.util.site_is_subsample(site) for name, site in sites},
            {name: b.poutine.util.site_is_factor(site) for name, site in sites},
        )

    (subsample, factor), theirs = run_both(program)
    assert (subsample, factor) == theirs
    assert [n for n, yes in subsample.items() if yes] == ["N", "M"]
    assert [n for n, yes in factor.items() if yes] == ["f"]


@pytest.mark.parametrize("graph_type", ["flat", "dense"])
def test_prune_subsample_sites_matches_pyro(graph_type: str) -> None:
    def program(b: Backend) -> Any:
        tr = _trace(b, graph_type)
        pruned = b.poutine.util.prune_subsample_sites(tr)
        assert pruned is not tr and "N" in tr and "M" in tr
        return pruned, sorted(pruned.edges)

    (ours, our_edges), (theirs, their_edges) = run_both(program)
    assert [n for n in ours.nodes if n not in ("_INPUT", "_RETURN")] == ["p", "x", "f", "o", "c"]
    assert our_edges == their_edges
    assert_traces_match(ours, theirs)


# --- extend functions ----------------------------------------------------------------------------


def _sample_message(name: str, fn: Any, **kwargs: Any) -> Message:
    return new_message("sample", name, fn, **kwargs)


def _pyro_partial_trace() -> Any:
    tr = pyro.poutine.Trace()
    tr.add_node("a", name="a", type="sample", value=torch.tensor(1.0), is_observed=False)
    return tr


def _ember_partial_trace() -> Trace:
    tr = Trace()
    tr.add_node("a", name="a", type="sample", value=torch.tensor(1.0), is_observed=False)
    return tr


SUPPORTS: dict[str, tuple[Callable[[Any], Any], int]] = {
    "bernoulli": (lambda d: d.Bernoulli(0.3), 2),
    "categorical": (lambda d: d.Categorical(torch.tensor([0.2, 0.5, 0.3])), 3),
    "batched_bernoulli": (lambda d: d.Bernoulli(torch.full((2,), 0.3)), 2),
}


@pytest.mark.parametrize("num_samples", [None, 0, 1, 5])
@pytest.mark.parametrize("kind", list(SUPPORTS))
def test_enum_extend_matches_pyro(kind: str, num_samples: int | None) -> None:
    make, support_size = SUPPORTS[kind]
    ours_tr = _ember_partial_trace()
    theirs_tr = _pyro_partial_trace()
    ours = list(util.enum_extend(ours_tr, _sample_message("c", make(dist)), num_samples=num_samples))
    their_msg: Any = _sample_message("c", make(pyro.distributions))
    theirs = pyro.poutine.util.enum_extend(theirs_tr, their_msg, num_samples=num_samples)
    expected = support_size if num_samples is None else min(support_size, num_samples + 1)
    assert len(ours) == len(theirs) == expected
    assert list(ours_tr.nodes) == ["a"]
    for our_trace, their_trace in zip(ours, theirs):
        assert list(our_trace.nodes) == list(their_trace.nodes) == ["a", "c"]
        assert our_trace.nodes["a"] is ours_tr.nodes["a"]
        assert sorted(our_trace.nodes["c"]) == sorted(their_trace.nodes["c"])
        assert_same_value(our_trace.nodes["c"]["value"], their_trace.nodes["c"]["value"])


def test_enum_extend_negative_num_samples_means_all_values() -> None:
    msg: Any = _sample_message("c", dist.Categorical(torch.tensor([0.2, 0.5, 0.3])))
    assert len(pyro.poutine.util.enum_extend(pyro.poutine.Trace(), msg, num_samples=-1)) == 3
    assert len(list(util.enum_extend(Trace(), msg, num_samples=-1))) == 3


def test_extend_functions_return_lists_like_pyro() -> None:
    msg: Any = _sample_message("c", dist.Bernoulli(0.5))
    assert isinstance(pyro.poutine.util.enum_extend(pyro.poutine.Trace(), msg), list)
    assert isinstance(util.enum_extend(Trace(), msg), list)
    assert isinstance(util.mc_extend(Trace(), msg), list)


@pytest.mark.parametrize("num_samples", [None, 1, 3])
def test_mc_extend_matches_pyro(num_samples: int | None) -> None:
    def program(b: Backend) -> Any:
        tr = b.poutine.Trace()
        msg = _sample_message("z", b.dist.Normal(torch.zeros(2), 1.0))
        return [t.nodes["z"]["value"] for t in b.poutine.util.mc_extend(tr, msg, num_samples=num_samples)], len(tr)

    (ours, our_len), (theirs, their_len) = run_both(program)
    assert len(ours) == (1 if num_samples is None else num_samples)
    assert our_len == their_len == 0
    assert_same_value(ours, theirs)


def test_mc_extend_passes_the_site_arguments() -> None:
    def draw(shape: tuple[int, ...], *, fill: float) -> torch.Tensor:
        return torch.full(shape, fill)

    msg: Any = new_message("sample", "z", draw, ((2,),), {"fill": 4.0})
    (ours,) = list(util.mc_extend(Trace(), msg))
    (theirs,) = pyro.poutine.util.mc_extend(pyro.poutine.Trace(), msg)
    their_value: Any = theirs.nodes["z"]["value"]
    assert torch.equal(ours.nodes["z"]["value"], their_value)
    assert torch.equal(their_value, torch.full((2,), 4.0))


# --- escape predicates ---------------------------------------------------------------------------


def _messages(d: Any) -> dict[str, Message]:
    return {
        "discrete": _sample_message("c", d.Bernoulli(0.5)),
        "continuous": _sample_message("z", d.Normal(0.0, 1.0)),
        "observed_discrete": _sample_message("o", d.Bernoulli(0.5), value=torch.tensor(1.0), is_observed=True),
        "already_in_trace": _sample_message("a", d.Bernoulli(0.5)),
        "param": new_message("param", "p", lambda: torch.tensor(0.0)),
        "plain_function": _sample_message("f", lambda: torch.tensor(0.0)),
    }


@pytest.mark.parametrize("predicate", ["discrete_escape", "all_escape"])
def test_escape_predicates_match_pyro(predicate: str) -> None:
    ours_fn = getattr(util, predicate)
    theirs_fn = getattr(pyro.poutine.util, predicate)
    ours = {key: ours_fn(_ember_partial_trace(), msg) for key, msg in _messages(dist).items()}
    theirs = {key: bool(theirs_fn(_pyro_partial_trace(), msg)) for key, msg in _messages(pyro.distributions).items()}
    assert ours == theirs
    expected = {"discrete"} if predicate == "discrete_escape" else {"discrete", "continuous", "plain_function"}
    assert {key for key, escape in ours.items() if escape} == expected


def test_escape_predicates_skip_unnamed_messages_like_pyro() -> None:
    msg: Any = new_message("sample", None, dist.Bernoulli(0.5))
    assert not pyro.poutine.util.all_escape(pyro.poutine.Trace(), msg)
    assert not util.all_escape(Trace(), msg)


def test_validation_switch() -> None:
    util.enable_validation(False)
    assert util.is_validation_enabled() is False and poutine.is_validation_enabled() is False
    util.enable_validation(True)
    assert util.is_validation_enabled() is True
    assert ember.poutine.util is util

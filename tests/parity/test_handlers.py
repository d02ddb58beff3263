"""Handlers (condition, replay, block, uncondition, substitute, seed) agree with pyro-ppl."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest
import torch

from tests.parity._backends import Backend, assert_same_value, assert_traces_match, run_both


def latent_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    with pyro.plate("N", 3):
        y = pyro.sample("y", dist.Normal(z, 1.0))
    w = pyro.sample("w", dist.Normal(y.sum(), 2.0))
    return z, y, w


def observed_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    p = pyro.param("p", torch.tensor(0.5), constraint=dist.constraints.unit_interval)
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    with pyro.plate("N", 3):
        b = pyro.sample("b", dist.Normal(a, p), obs=torch.tensor([0.1, -0.2, 0.3]))
    return a, b


def _bind(b: Backend, model: Any) -> Any:
    return functools.partial(model, b.pyro, b.dist, b.poutine)


# --- condition ---------------------------------------------------------------------------------


def test_condition_on_dict_matches_pyro() -> None:
    data = {"z": torch.tensor(0.5), "y": torch.tensor([1.0, 2.0, 3.0]), "w": None}

    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.condition(_bind(b, latent_model), data=data)).get_trace()

    ours, theirs = run_both(program)
    assert [ours.nodes[n]["is_observed"] for n in ("z", "y", "w")] == [True, True, False]
    assert_traces_match(ours, theirs)


def test_top_level_condition_with_positional_data_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.trace(b.pyro.condition(_bind(b, latent_model), {"w": torch.tensor(1.0)})).get_trace()

    assert_traces_match(*run_both(program))


def test_condition_on_trace_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        source = b.poutine.trace(_bind(b, latent_model)).get_trace()
        conditioned = b.poutine.condition(_bind(b, latent_model), data=source)
        tr = b.poutine.trace(conditioned).get_trace()
        assert all(tr.nodes[n]["value"] is source.nodes[n]["value"] for n in ("z", "y", "w"))
        return tr

    assert_traces_match(*run_both(program))


# --- replay ------------------------------------------------------------------------------------


def guide(pyro: Any, dist: Any, poutine: Any) -> None:
    m = pyro.param("m", torch.tensor(0.2))
    s = pyro.param("s", torch.tensor(0.7), constraint=dist.constraints.positive)
    z = pyro.sample("z", dist.Normal(m, s))
    with pyro.plate("N", 3):
        pyro.sample("y", dist.Normal(z, s))


def test_replay_guide_trace_into_model_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        guide_tr = b.poutine.trace(_bind(b, guide)).get_trace()
        model_tr = b.poutine.trace(b.poutine.replay(_bind(b, latent_model), trace=guide_tr)).get_trace()
        for name in ("z", "y"):
            assert model_tr.nodes[name]["value"] is guide_tr.nodes[name]["value"], name
            assert model_tr.nodes[name]["infer"] is guide_tr.nodes[name]["infer"], name
        return guide_tr, model_tr

    (ours_guide, ours_model), (theirs_guide, theirs_model) = run_both(program)
    assert_traces_match(ours_guide, theirs_guide)
    assert_traces_match(ours_model, theirs_model)


def test_replay_with_positional_trace_and_params_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        source = b.poutine.trace(_bind(b, guide)).get_trace()
        b.clear_param_store()
        replayed = b.poutine.trace(b.poutine.replay(_bind(b, guide), source, params={})).get_trace()
        return replayed

    assert_traces_match(*run_both(program))


def test_replay_reuses_guide_subsample_indices_like_pyro() -> None:
    def sub_guide(pyro: Any, dist: Any, poutine: Any) -> None:
        with pyro.plate("N", 10, subsample_size=3):
            pyro.sample("x", dist.Normal(0.0, 1.0))

    def program(b: Backend) -> Any:
        guide_tr = b.poutine.trace(_bind(b, sub_guide)).get_trace()
        model_tr = b.poutine.trace(b.poutine.replay(_bind(b, sub_guide), trace=guide_tr)).get_trace()
        assert model_tr.nodes["N"]["value"] is guide_tr.nodes["N"]["value"]
        return model_tr

    assert_traces_match(*run_both(program))


# --- block -------------------------------------------------------------------------------------

BLOCK_TABLE: list[tuple[str, dict[str, Any], list[str]]] = [
    ("nothing", {}, []),
    ("hide", {"hide": ["a"]}, ["p", "b"]),
    ("expose", {"expose": ["a"]}, ["a"]),
    ("hide_types_observe", {"hide_types": ["observe"]}, ["p", "a"]),
    ("hide_types_param", {"hide_types": ["param"]}, ["a", "b"]),
    ("expose_types_sample", {"expose_types": ["sample"]}, ["a"]),
    ("expose_types_observe", {"expose_types": ["observe"]}, ["b"]),
    ("hide_all_false", {"hide_all": False}, ["p", "a", "b"]),
    ("hide_fn", {"hide_fn": lambda msg: msg["type"] == "param"}, ["a", "b"]),
    ("expose_fn", {"expose_fn": lambda msg: msg["name"] == "b"}, ["b"]),
    ("expose_all", {"hide_all": False, "expose_all": True}, ["p", "a", "b"]),
    ("hide_and_expose_types", {"hide": ["a"], "expose_types": ["param"]}, ["p"]),
]


@pytest.mark.parametrize(("kwargs", "visible"), [(k, v) for _, k, v in BLOCK_TABLE], ids=[c for c, _, _ in BLOCK_TABLE])
def test_block_decision_table_matches_pyro(kwargs: dict[str, Any], visible: list[str]) -> None:
    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.block(_bind(b, observed_model), **kwargs)).get_trace()

    ours, theirs = run_both(program)
    assert [n for n in theirs.nodes if not n.startswith("_")] == [n for n in ours.nodes if not n.startswith("_")]
    sites = [n for n in ours.nodes if n not in ("_INPUT", "_RETURN", "N")]
    assert sites == visible
    assert_traces_match(ours, theirs)


def test_block_inside_trace_still_runs_inner_handlers_like_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.poutine.trace() as outer:
            with b.poutine.block(hide=["a"]):
                with b.poutine.trace() as inner:
                    observed_model(b.pyro, b.dist, b.poutine)
        return outer.get_trace(), inner.get_trace()

    (ours_outer, ours_inner), (theirs_outer, theirs_inner) = run_both(program)
    assert_traces_match(ours_outer, theirs_outer)
    assert_traces_match(ours_inner, theirs_inner)


# --- uncondition, substitute, seed -------------------------------------------------------------


def test_uncondition_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.uncondition(_bind(b, observed_model))).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["b"]["infer"]["was_observed"] is True
    assert ours.nodes["b"]["is_observed"] is False
    assert_traces_match(ours, theirs)


def test_substitute_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        data = {"p": torch.tensor(0.9), "a": torch.tensor(5.0)}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr = b.poutine.trace(b.poutine.substitute(_bind(b, observed_model), data=data)).get_trace()
        return tr, sorted(str(w.message) for w in caught)

    (ours, ours_warnings), (theirs, theirs_warnings) = run_both(program)
    assert ours.nodes["p"]["value"].item() == pytest.approx(0.9)
    assert ours_warnings == theirs_warnings
    assert_traces_match(ours, theirs)


def test_substitute_unknown_param_warns_like_pyro() -> None:
    def program(b: Backend) -> Any:
        data = {"q": torch.tensor(0.9)}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr = b.poutine.trace(b.poutine.substitute(_bind(b, observed_model), data=data)).get_trace()
        return tr, [(w.category.__name__, str(w.message)) for w in caught]

    (ours, ours_warnings), (theirs, theirs_warnings) = run_both(program)
    assert ours_warnings == theirs_warnings
    assert_traces_match(ours, theirs)


def test_seed_handler_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        seeded = b.poutine.seed(_bind(b, latent_model), rng_seed=7)
        first = b.poutine.trace(seeded).get_trace()
        second = b.poutine.trace(seeded).get_trace()
        assert torch.equal(first.nodes["z"]["value"], second.nodes["z"]["value"])
        return first

    assert_traces_match(*run_both(program, seed=0))
    a, _ = run_both(program, seed=0)
    b, _ = run_both(program, seed=5)
    assert torch.equal(a.nodes["z"]["value"], b.nodes["z"]["value"])


def test_seed_context_restores_rng_like_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.poutine.seed(rng_seed=0) as s:
            inside = torch.randn(2)
        after = torch.randn(2)
        return s, inside, after

    ours, theirs = run_both(program, seed=3)
    assert ours[0] is None
    assert_same_value(ours, theirs)


# --- handler composition -----------------------------------------------------------------------


def test_stacked_handlers_match_pyro() -> None:
    def program(b: Backend) -> Any:
        model = _bind(b, observed_model)
        model = b.poutine.condition(model, data={"a": torch.tensor(0.25)})
        model = b.poutine.scale(model, scale=2.0)
        model = b.poutine.mask(model, mask=torch.tensor([True, False, True]))
        model = b.poutine.substitute(model, data={"p": torch.tensor(0.3)})
        model = b.poutine.block(model, hide=["N"])
        return b.poutine.trace(model).get_trace()

    assert_traces_match(*run_both(program))

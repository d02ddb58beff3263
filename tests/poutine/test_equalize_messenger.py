from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from tests.parity._backends import Backend, assert_traces_match, run_both
from tests.poutine._forms import compositions, round_trip, traced_composition


def model() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a: torch.Tensor = ember.sample("a_std", dist.LogNormal(0.0, 1.0))
    b: torch.Tensor = ember.sample("b_std", dist.LogNormal(0.0, 1.0))
    c: torch.Tensor = ember.sample("c_mean", dist.Normal(0.0, 1.0))
    return a, b, c


def backend_model(b: Backend) -> Any:
    x = b.pyro.sample("x", b.dist.Normal(0.0, 1.0))
    y = b.pyro.sample("y", b.dist.Normal(5.0, 3.0))
    with b.pyro.plate("N", 2):
        v = b.pyro.sample("v_1", b.dist.Normal(0.0, 1.0))
        w = b.pyro.sample("v_2", b.dist.Normal(1.0, 1.0))
    return x, y, v, w


def param_model(b: Backend) -> Any:
    a = b.pyro.param("a_s", torch.tensor(1.0))
    c = b.pyro.param("b_s", torch.tensor(2.0))
    return a, c


# --- semantics -----------------------------------------------------------------------------------


def test_later_sites_become_masked_deltas_at_the_first_value() -> None:
    tr = poutine.trace(poutine.equalize(model, ".+_std")).get_trace()
    first, second = tr.nodes["a_std"], tr.nodes["b_std"]
    assert second["value"] is first["value"]
    assert first["is_observed"] is False and first["infer"] == {}
    assert second["is_observed"] is True and second["infer"] == {"_deterministic": True}
    assert type(second["fn"]).__name__ == "MaskedDistribution"
    second_fn: Any = second["fn"]
    assert second_fn.log_prob(second["value"]) == 0.0
    assert tr.nodes["c_mean"]["value"] != first["value"]
    tr.compute_log_prob()
    expected = dist.LogNormal(0.0, 1.0).log_prob(first["value"]) + dist.Normal(0.0, 1.0).log_prob(
        tr.nodes["c_mean"]["value"]
    )
    assert torch.allclose(torch.as_tensor(tr.log_prob_sum()), expected)


@pytest.mark.parametrize(
    ("sites", "keep_dist"),
    [("x|y", False), (["x", "y"], True), ("v_.", False), (["v_.*"], True), ("v", False)],
)
def test_sample_equalize_matches_pyro(sites: Any, keep_dist: bool) -> None:
    def program(b: Backend) -> Any:
        equalized = b.poutine.equalize(functools.partial(backend_model, b), sites, keep_dist=keep_dist)
        return b.poutine.trace(equalized).get_trace()

    assert_traces_match(*run_both(program))


def test_keep_dist_scores_the_shared_value() -> None:
    def m() -> None:
        ember.sample("x", dist.Normal(0.0, 1.0))
        ember.sample("y", dist.Normal(5.0, 3.0))

    tr = poutine.trace(poutine.equalize(m, ["x", "y"], keep_dist=True)).get_trace()
    x = tr.nodes["x"]["value"]
    assert tr.nodes["y"]["value"] is x and tr.nodes["y"]["is_observed"]
    assert type(tr.nodes["y"]["fn"]).__name__ == "Normal" and tr.nodes["y"]["infer"] == {}
    tr.compute_log_prob()
    assert torch.allclose(tr.nodes["y"]["log_prob"], dist.Normal(5.0, 3.0).log_prob(x))


def test_patterns_match_whole_names_only() -> None:
    a, b, c = poutine.equalize(model, ["a_std", "c"])()
    assert a != b and a != c
    a, b, c = poutine.equalize(model, ["a_std", "c_mean"])()
    assert a == c and a != b


def test_param_sites_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        equalized = b.poutine.equalize(functools.partial(param_model, b), ".+_s", "param")
        tr = b.poutine.trace(equalized).get_trace()
        assert "b_s" not in b.pyro.get_param_store()
        return tr, tr.nodes["_RETURN"]["value"]

    (ours, (a, c)), (theirs, _) = run_both(program)
    assert a.item() == 1.0 and c.item() == 1.0
    # The later param site is never looked up, so (as in Pyro) it is never created.
    assert "b_s" not in ember.get_param_store()
    assert_traces_match(ours, theirs)


def test_type_selects_the_site_type() -> None:
    def m() -> tuple[torch.Tensor, torch.Tensor]:
        p = ember.param("s", torch.tensor(3.0))
        return p, ember.sample("s2", dist.Normal(0.0, 1.0))

    p, s = poutine.equalize(m, "s.?")()
    assert p == 3.0 and s != 3.0
    p, s = poutine.equalize(m, "s.?", type="param")()
    assert p == 3.0 and s != 3.0


def test_first_match_to_complete_wins_matches_pyro() -> None:
    # Under ``do`` the fresh copy of "x" completes before the intervened original, so the
    # later match "y" gets the copy's sampled value, not the intervention.
    def program(b: Backend) -> Any:
        equalized = b.poutine.equalize(functools.partial(backend_model, b), "x|y")
        tr = b.poutine.trace(b.poutine.do(equalized, data={"x": torch.tensor(7.0)})).get_trace()
        return tr

    ours, theirs = run_both(program)
    assert ours.nodes["y"]["value"] is ours.nodes["x"]["value"]
    assert ours.nodes["y"]["value"] != 7.0
    assert_traces_match(ours, theirs)


def test_value_is_forgotten_on_each_entry() -> None:
    equalized = poutine.equalize(model, ".+_std")
    first, second = equalized(), equalized()
    assert first[0] == first[1] and second[0] == second[1]
    assert first[0] != second[0]


# --- forms ---------------------------------------------------------------------------------------


def test_function_decorator_and_context_manager_forms() -> None:
    a, b, _ = poutine.equalize(model, sites=".+_std")()
    assert a == b

    @poutine.equalize(sites=["a_std", "b_std"])
    def decorated() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return model()

    a, b, _ = decorated()
    assert a == b
    with poutine.equalize(sites=".+_std") as messenger:
        a, b, _ = model()
    assert a == b and isinstance(messenger, poutine.EqualizeMessenger)


class Pair:
    def __init__(self, offset: float) -> None:
        self.offset = offset

    @poutine.equalize(sites=".+_std")
    def run(self) -> torch.Tensor:
        a, b, _ = model()
        return b - a + self.offset


def test_method_decorator_binds_self() -> None:
    assert Pair(2.0).run() == 2.0


def test_wrapped_model_pickles() -> None:
    loaded = round_trip(poutine.equalize(model, [".+_std"], keep_dist=True))
    assert loaded.__name__ == "model"
    tr = poutine.trace(loaded).get_trace()
    assert tr.nodes["b_std"]["value"] is tr.nodes["a_std"]["value"]
    assert type(tr.nodes["b_std"]["fn"]).__name__ == "LogNormal"


# --- composition ---------------------------------------------------------------------------------

SITES = "x|y"


def _guide_trace(b: Backend) -> Any:
    return b.poutine.trace(lambda: b.pyro.sample("y", b.dist.Normal(-2.0, 0.1))).get_trace()


COMPOSITIONS = compositions(
    lambda b, m: b.poutine.equalize(m, SITES), _guide_trace, data={"x": torch.tensor(0.5)}, hide=["x"]
)


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_composition_matches_pyro(name: str) -> None:
    program = traced_composition(COMPOSITIONS[name], backend_model)
    assert_traces_match(*run_both(program))


def test_condition_inside_fixes_the_shared_value() -> None:
    def m() -> tuple[torch.Tensor, torch.Tensor]:
        return ember.sample("x", dist.Normal(0.0, 1.0)), ember.sample("y", dist.Normal(0.0, 1.0))

    x, y = poutine.equalize(poutine.condition(m, data={"x": torch.tensor(0.5)}), SITES)()
    assert x == 0.5 and y == 0.5


def test_plate_inside_and_outside_share_one_batch_value() -> None:
    def m() -> tuple[torch.Tensor, torch.Tensor]:
        with ember.plate("N", 3):
            return ember.sample("v_1", dist.Normal(0.0, 1.0)), ember.sample("v_2", dist.Normal(0.0, 1.0))

    v1, v2 = poutine.equalize(m, "v_.")()
    assert v1.shape == (3,) and torch.equal(v1, v2)
    with ember.plate("N", 3), poutine.equalize(sites="v_."):
        w1 = ember.sample("v_1", dist.Normal(0.0, 1.0))
        w2 = ember.sample("v_2", dist.Normal(0.0, 1.0))
    assert w1.shape == (3,) and torch.equal(w1, w2)

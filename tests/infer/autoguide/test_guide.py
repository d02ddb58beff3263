"""``AutoGuide``, ``AutoGuideList`` and ``AutoCallable``: composition, plates, prototype, pickling."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.autoguide import AutoCallable, AutoDelta, AutoDiagonalNormal, AutoGuide, AutoGuideList, AutoNormal
from ember.infer.autoguide.guide import prototype_hide_fn
from ember.poutine.message import new_message
from tests.infer.autoguide._models import DATA, assert_same_store, autoguide, mixed, reload_without_store, store_state
from tests.parity._backends import EMBER, Backend, assert_same_error, assert_traces_match, run_both


def _guide_list(backend: Backend) -> Any:
    strategies, block = autoguide(backend), backend.poutine.block
    model = mixed(backend)
    guide = strategies.AutoGuideList(model)
    guide.append(strategies.AutoDelta(block(model, expose=["a"])))
    guide.append(strategies.AutoNormal(block(model, expose=["s", "z"])))
    guide.append(strategies.AutoDiagonalNormal(block(model, expose=["p"])))
    return guide


def test_guide_list_traces_and_params_match_pyro() -> None:
    def program(backend: Backend) -> Any:
        guide = _guide_list(backend)
        first = backend.poutine.trace(guide).get_trace(DATA)
        second = backend.poutine.trace(guide).get_trace(DATA)
        return first, second, store_state(backend), guide.median(DATA)

    ours, theirs = run_both(program)
    assert_traces_match(ours[0], theirs[0])
    assert_traces_match(ours[1], theirs[1])
    assert_same_store(ours[2], theirs[2])
    assert list(ours[2])[:3] == ["AutoGuideList.0.a", "AutoGuideList.1.locs.s", "AutoGuideList.1.scales.s"]
    assert sorted(ours[3]) == ["a", "p", "s", "z"]
    for name in theirs[3]:
        assert torch.allclose(ours[3][name], theirs[3][name]), name


def test_guide_list_shares_its_plates_with_its_parts() -> None:
    guide = _guide_list(EMBER)
    tr = poutine.trace(guide).get_trace(DATA)
    subsample_sites = [name for name, site in tr.nodes.items() if site["type"] == "sample" and name == "N"]
    assert subsample_sites == ["N"]  # one plate, created by the list, entered by every part
    part = guide[1]
    assert isinstance(part, AutoNormal)
    assert part.plates is guide.plates and part.master is not None and part.master() is guide


def test_guide_list_quantiles_combine_the_parts() -> None:
    model = mixed(EMBER)
    guide = AutoGuideList(model)
    guide.append(AutoNormal(poutine.block(model, hide=["p"])))
    guide.append(AutoDiagonalNormal(poutine.block(model, expose=["p"])))
    guide(DATA)
    quantiles = guide.quantiles([0.2, 0.8], DATA)
    assert sorted(quantiles) == ["a", "p", "s", "z"]
    assert quantiles["p"].shape == (2, 3) and quantiles["z"].shape == (2, 10)


def test_appending_a_callable_wraps_it_in_an_auto_callable() -> None:
    model = mixed(EMBER)
    seen: list[torch.Tensor] = []

    def local_guide(data: torch.Tensor) -> None:
        seen.append(data)

    guide = AutoGuideList(model)
    guide.append(AutoNormal(poutine.block(model, expose=["a", "s", "p", "z"])))
    guide.append(local_guide)
    part = guide[1]
    assert isinstance(part, AutoCallable) and part.median(DATA) == {}
    assert sorted(guide(DATA)) == ["a", "p", "s", "z"] and seen == [DATA]


def test_auto_callable_returns_the_guide_result_and_median() -> None:
    def my_median() -> dict[str, torch.Tensor]:
        return {"x": torch.tensor(1.0)}

    guide = AutoCallable(lambda: None, lambda: {"x": torch.tensor(2.0)}, my_median)
    assert guide() == {"x": torch.tensor(2.0)} and guide.median() == {"x": torch.tensor(1.0)}
    assert AutoCallable(lambda: None, lambda: None)() == {}


def test_appending_a_part_twice_raises_as_in_pyro() -> None:
    def program(backend: Backend) -> None:
        strategies = autoguide(backend)
        part = strategies.AutoDelta(mixed(backend))
        strategies.AutoGuideList(mixed(backend)).append(part)
        strategies.AutoGuideList(mixed(backend)).append(part)

    ours, _ = assert_same_error(program)
    assert str(ours) == "The module `AutoGuideList` is already added."


def test_add_is_a_deprecated_append() -> None:
    guide = AutoGuideList(mixed(EMBER))
    with pytest.warns(DeprecationWarning, match="The method `.add` has been deprecated in favor of `.append`."):
        guide.add(AutoDelta(mixed(EMBER)))
    assert len(guide) == 1


def test_parts_may_not_bring_their_own_plates() -> None:
    model = mixed(EMBER)
    guide = AutoGuideList(model)
    guide.append(AutoNormal(model, create_plates=lambda data: ember.plate("N", 10, subsample_size=4)))
    with pytest.raises(AssertionError, match="Cannot pass create_plates\\(\\) to non-master guide"):
        guide(DATA)


def test_call_returns_values_sorted_by_site_name() -> None:
    guide = AutoDelta(mixed(EMBER))
    guide(DATA)
    torch.manual_seed(1)
    result = guide(DATA)
    torch.manual_seed(1)
    values = guide.call(DATA)
    assert len(values) == 4
    assert all(torch.equal(v, result[k]) for v, k in zip(values, sorted(result)))


def test_base_guide_has_no_median() -> None:
    with pytest.raises(NotImplementedError):
        AutoGuide(mixed(EMBER)).median()


def test_prototype_hide_fn_keeps_only_latent_samples() -> None:
    normal = dist.Normal(0.0, 1.0)
    assert not prototype_hide_fn(new_message("sample", "x", normal))
    assert prototype_hide_fn(new_message("sample", "x", normal, is_observed=True))
    assert prototype_hide_fn(new_message("param", "x", normal))
    with poutine.trace() as tracer, ember.plate("N", 5, subsample_size=2):
        pass
    assert prototype_hide_fn(tracer.trace.nodes["N"])


def test_prototype_trace_is_hidden_from_outer_handlers() -> None:
    guide = AutoNormal(mixed(EMBER))
    with poutine.trace() as tracer:
        guide(DATA)
    assert guide.prototype_trace is not None
    assert list(guide.prototype_trace.nodes) == ["_INPUT", "a", "s", "p", "z", "_RETURN"]
    assert "obs" not in tracer.trace.nodes  # the model's prototype run was blocked


def test_pickled_guide_list_restores_master_references() -> None:
    guide = _guide_list(EMBER)
    guide(DATA)
    loaded = reload_without_store(guide)
    assert all(part.master is not None and part.master() is loaded for part in loaded)
    assert guide[0].master() is guide and guide.model is not None  # the original is untouched
    with pytest.raises(TypeError, match="AutoGuideList.model is not kept when a guide is pickled"):
        loaded.model
    torch.manual_seed(5)
    expected = guide(DATA)
    torch.manual_seed(5)
    got = loaded(DATA)
    assert all(torch.equal(got[name], expected[name]) for name in expected)

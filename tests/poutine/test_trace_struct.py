from __future__ import annotations

import itertools
import pickle
import warnings
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints
from ember.poutine.trace_struct import Trace


def plated_model() -> None:
    s = ember.param("s", torch.ones(2))
    with ember.plate("N", 3):
        ember.sample("x", dist.Normal(s, 1.0).to_event(1))


def test_format_shapes_matches_pyro_layout_exactly() -> None:
    tr = poutine.trace(plated_model).get_trace()
    tr.compute_log_prob()
    expected = (
        "Trace Shapes:      \n Param Sites:      \n            s   2  \nSample Sites:      \n"
        "       N dist   |  \n        value 3 |  \n     log_prob   |  \n"
        "       x dist 3 | 2\n        value 3 | 2\n     log_prob 3 |  "
    )
    assert tr.format_shapes() == expected
    assert Trace().format_shapes() == "Trace Shapes:"
    assert tr.format_shapes(last_site="s").splitlines()[-1].strip() == "Sample Sites:"


def test_add_node_duplicates() -> None:
    tr = Trace()
    tr.add_node("a", type="sample", value=1)
    with pytest.raises(RuntimeError, match="Multiple sample sites named 'a'") as info:
        tr.add_node("a", type="sample", value=2)
    assert "unique name" in str(info.value)
    tr.add_node("p", type="param", value=1)
    tr.add_node("p", type="param", value=2)
    assert tr.nodes["p"]["value"] == 2
    with pytest.raises(RuntimeError, match="p is already in the trace as a param"):
        tr.add_node("p", type="sample", value=3)


def test_duplicate_site_in_model_names_site_and_leaves_no_state() -> None:
    def bad() -> None:
        with ember.plate("data", 2):
            ember.sample("x", dist.Normal(0.0, 1.0))
            ember.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(RuntimeError, match="Multiple sample sites named 'x'") as info:
        poutine.trace(bad).get_trace()
    assert "Trace Shapes:" in str(info.value)  # the trace handler appends the shape table
    assert poutine.runtime.get_stack() == () and poutine.runtime._DIM_ALLOCATOR._stack == []


def test_edges_and_topological_sort() -> None:
    tr = Trace()
    for name in "abcd":
        tr.add_node(name, type="sample")
    tr.add_edge("a", "b")
    tr.add_edge("a", "c")
    tr.add_edge("c", "d")
    tr.add_edge("b", "d")
    assert set(tr.edges) == {("a", "b"), ("a", "c"), ("c", "d"), ("b", "d")}
    assert tr.predecessors("d") == {"b", "c"} and tr.successors("a") == {"b", "c"}
    order = tr.topological_sort()
    assert all(order.index(u) < order.index(v) for u, v in tr.edges)
    reverse = tr.topological_sort(reverse=True)
    assert all(reverse.index(u) > reverse.index(v) for u, v in tr.edges)
    tr.remove_node("c")
    assert set(tr.edges) == {("a", "b"), ("b", "d")} and "c" not in tr


@pytest.mark.parametrize("edges", list(itertools.permutations([("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")])))
def test_topological_sort_respects_every_edge_order(edges: list[tuple[str, str]]) -> None:
    tr = Trace()
    for u, v in edges:
        tr.add_edge(u, v)
    order = tr.topological_sort()
    assert all(order.index(u) < order.index(v) for u, v in edges)


def test_copy_shares_nodes_and_edge_sets() -> None:
    tr = Trace()
    tr.add_node("a", type="sample")
    tr.add_node("b", type="sample")
    cp = tr.copy()
    cp.add_edge("a", "b")
    assert tr.successors("a") == {"b"}
    assert cp.nodes["a"] is tr.nodes["a"]
    cp.add_node("c", type="sample")
    assert "c" not in tr


def test_log_prob_sum_scale_mask_and_filter() -> None:
    def m() -> None:
        with poutine.scale(scale=2.0), poutine.mask(mask=torch.tensor([True, False, True])):
            with ember.plate("p", 3):
                with poutine.scale(scale=torch.tensor(3.0)):
                    ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.zeros(3))
        ember.sample("z", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    tr = poutine.trace(m).get_trace()
    expected_y = 2 * 6 * dist.Normal(0.0, 1.0).log_prob(torch.tensor(0.0))
    assert torch.allclose(torch.as_tensor(tr.log_prob_sum(lambda name, site: name == "y")), expected_y)
    assert "log_prob" not in tr.nodes["y"] and "log_prob_sum" in tr.nodes["y"]
    assert Trace().log_prob_sum() == 0.0


def test_compute_log_prob_and_score_parts() -> None:
    def m() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))
        ember.sample("b", dist.Bernoulli(0.3))

    tr = poutine.trace(m).get_trace()
    tr.compute_score_parts()
    a, b = tr.nodes["a"], tr.nodes["b"]
    assert torch.equal(a["score_parts"].entropy_term, a["log_prob"])
    assert a["score_parts"].score_function == 0
    assert torch.equal(b["score_parts"].score_function, b["log_prob"])
    tr2 = poutine.trace(m).get_trace()
    tr2.compute_log_prob(lambda name, site: name == "a")
    assert "log_prob" in tr2.nodes["a"] and "log_prob" not in tr2.nodes["b"]
    assert torch.equal(tr2.nodes["a"]["unscaled_log_prob"], tr2.nodes["a"]["log_prob"])


@pytest.mark.parametrize("method", ["log_prob_sum", "compute_log_prob", "compute_score_parts"])
def test_scoring_errors_name_site_and_shapes(method: str) -> None:
    def m() -> None:
        ember.sample("test_site", dist.Beta(1.0, 1.0), obs=torch.tensor(2.0))

    tr = poutine.trace(m).get_trace()
    what = {"log_prob_sum": "log_prob_sum", "compute_log_prob": "log_prob", "compute_score_parts": "score_parts"}
    with pytest.raises(ValueError, match=f"Error while computing {what[method]} at site 'test_site':") as info:
        getattr(tr, method)()
    assert "test_site dist" in str(info.value)


def test_nan_log_prob_sum_warns_with_site() -> None:
    def m() -> None:
        ember.sample("y", dist.Normal(torch.tensor(float("nan")), 1.0), obs=torch.tensor(0.0))

    with ember.validation_enabled(False):
        tr = poutine.trace(m).get_trace()
    with pytest.warns(UserWarning, match="Encountered NaN: log_prob_sum at site 'y'"):
        tr.log_prob_sum()
    with ember.validation_enabled(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        poutine.trace(m).get_trace().log_prob_sum()


def test_node_selection_properties() -> None:
    def m() -> None:
        ember.param("p", torch.tensor(1.0))
        with ember.plate("N", 2):
            ember.sample("r", dist.Normal(0.0, 1.0))
            ember.sample("n", dist.Bernoulli(0.5))
            ember.sample("o", dist.Normal(0.0, 1.0), obs=torch.zeros(2))

    tr = poutine.trace(m).get_trace()
    assert tr.param_nodes == ["p"]
    assert tr.observation_nodes == ["o"]
    assert tr.stochastic_nodes == ["N", "r", "n"]
    assert tr.reparameterized_nodes == ["r"]
    assert sorted(tr.nonreparam_stochastic_nodes) == ["N", "n"]
    assert [name for name, _ in tr.iter_stochastic_nodes()] == ["N", "r", "n"]


def test_detach_and_pickle_without_params() -> None:
    loc = torch.tensor(0.0, requires_grad=True)

    def m() -> None:
        ember.sample("x", dist.Normal(loc, 1.0))

    tr = poutine.trace(m).get_trace()
    assert tr.nodes["x"]["value"].requires_grad
    tr.detach_()
    assert not tr.nodes["x"]["value"].requires_grad
    restored: Trace = pickle.loads(pickle.dumps(tr))
    assert list(restored.nodes) == list(tr.nodes)
    assert torch.equal(restored.nodes["x"]["value"], tr.nodes["x"]["value"])


def test_pack_tensors_symbols() -> None:
    def m() -> None:
        with ember.plate("p", 5):
            ember.sample("c", dist.Normal(0.0, 1.0))

    tr = poutine.trace(m).get_trace()
    tr.compute_log_prob()
    tr.pack_tensors()
    assert tr.plate_to_symbol == {"p": "a"}
    assert tr.nodes["c"]["packed"]["log_prob"]._pyro_dims == "a"
    bad = Trace()
    bad.add_node(
        "b", type="sample", name="b", fn=dist.Normal(torch.zeros(3), 1.0), value=torch.zeros(3),
        log_prob=torch.zeros(3), unscaled_log_prob=torch.zeros(3), mask=None, cond_indep_stack=(), infer={},
    )
    with pytest.raises(ValueError, match="Error while packing tensors at site 'b':\n  Invalid tensor shape."):
        bad.pack_tensors()


def test_trace_error_augmentation_keeps_type() -> None:
    def m() -> Any:
        ember.sample("a", dist.Normal(0.0, 1.0))
        raise ValueError("oops")

    with pytest.raises(ValueError) as info:
        poutine.trace(m).get_trace()
    assert str(info.value).startswith("oops\nTrace Shapes:")
    assert "a dist" in str(info.value)


def test_param_constraint_value_in_trace() -> None:
    def m() -> torch.Tensor:
        return ember.param("s", torch.tensor(2.0), constraint=constraints.positive)

    tr = poutine.trace(m).get_trace()
    assert tr.nodes["s"]["type"] == "param" and torch.allclose(tr.nodes["s"]["value"], torch.tensor(2.0))

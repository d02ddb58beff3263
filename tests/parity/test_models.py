"""Models run through Ember and pyro-ppl give the same trace, values, log density and shapes.

Each model is written once against a backend's ``(pyro, dist, poutine)`` and traced by
:func:`trace_of`; ``test_model_trace_matches_pyro`` compares the two traces site by site.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import pytest
import torch

from tests.parity._backends import Backend, assert_same_value, assert_traces_match, run_both

_GEN = torch.Generator().manual_seed(2024)
DATA_4x3 = torch.randn(4, 3, generator=_GEN)
DATA_10 = torch.randn(10, generator=_GEN)
DATA_10x2 = torch.randn(10, 2, generator=_GEN)
DATA_10x6 = torch.randn(10, 6, generator=_GEN)
DATA_4 = torch.randn(4, generator=_GEN)

Model = Callable[..., Any]


def trace_of(model: Model, *args: Any, graph_type: str | None = None) -> Callable[[Backend], Any]:
    """A program that traces ``model(pyro, dist, poutine, *args)`` with the given backend."""

    def program(b: Backend) -> Any:
        bound = functools.partial(model, b.pyro, b.dist, b.poutine)
        return b.poutine.trace(bound, graph_type=graph_type).get_trace(*args)

    return program


# --- plates ------------------------------------------------------------------------------------


def nested_plates_auto(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> Any:
    loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
    with pyro.plate("a", 3):
        s = pyro.sample("s", dist.LogNormal(0.0, 1.0))
        with pyro.plate("b", 4):
            x = pyro.sample("x", dist.Normal(loc, s))
            pyro.sample("y", dist.Normal(x, 1.0), obs=data)
    return x


def nested_plates_explicit_dims(pyro: Any, dist: Any, poutine: Any) -> Any:
    n = pyro.plate("n", 2, dim=-3)
    with n, pyro.plate("m", 5):
        x = pyro.sample("x", dist.Normal(0.0, 1.0))
    with pyro.plate("p", 3, dim=-2), pyro.plate("q", 2, dim=-1):
        y = pyro.sample("y", dist.Normal(torch.zeros(2), 1.0))
    with n:
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
    return x, y, z


# --- subsampling -------------------------------------------------------------------------------


def subsample_size_model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> Any:
    loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
    with pyro.plate("N", 10, subsample_size=4) as idx:
        pyro.sample("obs", dist.Normal(loc, 1.0), obs=data[idx])
    return idx


def explicit_subsample_model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> Any:
    ind = torch.tensor([1, 3, 5])
    with pyro.plate("N", 10, subsample=ind) as idx:
        pyro.sample("a", dist.Normal(0.0, 1.0), obs=data[idx])
    with pyro.plate("M", 10, subsample_size=3, subsample=ind) as idx2:
        pyro.sample("b", dist.Normal(0.0, 1.0), obs=data[idx2])
    return idx, idx2


def subsample_data_model(pyro: Any, dist: Any, poutine: Any, d1: torch.Tensor, d2: torch.Tensor) -> Any:
    with pyro.plate("N", 10, subsample_size=4):
        row = pyro.subsample(d1, event_dim=0)
        rows = pyro.subsample(d2, event_dim=1)
        pyro.sample("a", dist.Normal(0.0, 1.0), obs=row)
        pyro.sample("b", dist.Normal(0.0, 1.0).expand([2]).to_event(1), obs=rows)
    return row, rows


def nested_subsample_model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> Any:
    with pyro.plate("N", 10, subsample_size=4, dim=-2), pyro.plate("M", 6, subsample_size=2, dim=-1):
        block = pyro.subsample(data, event_dim=0)
        pyro.sample("x", dist.Normal(0.0, 1.0), obs=block)
    return block


def subsampled_params_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    with pyro.plate("N", 10, subsample_size=3):
        pp = pyro.param("pp", torch.arange(10.0), event_dim=0)
        qq = pyro.param("qq", torch.ones(10, 2), constraint=dist.constraints.positive, event_dim=1)
        rr = pyro.param("rr", torch.zeros(2))
        pyro.sample("x", dist.Normal(pp, 1.0))
        pyro.sample("y", dist.Normal(rr, qq).to_event(1))
    return pp, qq, rr


# --- sequential plates -------------------------------------------------------------------------


def sequential_plates_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    counters = []
    for i in pyro.plate("s", 3):
        x = pyro.sample(f"x_{i}", dist.Normal(0.0, 1.0))
        with pyro.plate(f"v_{i}", 2):
            pyro.sample(f"y_{i}", dist.Normal(x, 1.0))
        counters.append(i)
    with pyro.plate("outer", 2):
        for j in pyro.plate("inner", 5, subsample_size=2):
            pyro.sample(f"z_{j}", dist.Normal(0.0, 1.0))
            counters.append(j)
    return counters


# --- masks and scales --------------------------------------------------------------------------


def mask_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    m = torch.tensor([True, False, True])
    with poutine.mask(mask=False):
        pyro.sample("a", dist.Normal(0.0, 1.0))
        pyro.param("p", torch.tensor(1.0))
    with pyro.plate("N", 3):
        with poutine.mask(mask=m):
            pyro.sample("b", dist.Normal(0.0, 1.0), obs=torch.zeros(3))
            with poutine.mask(mask=torch.tensor([True, True, False])):
                pyro.sample("c", dist.Normal(0.0, 1.0))
            with poutine.mask(mask=True):
                pyro.sample("d", dist.Normal(0.0, 1.0))
        pyro.sample("e", dist.Normal(0.0, 1.0).mask(m))
        pyro.sample("f", dist.Normal(0.0, 1.0).mask(False))
        with poutine.mask(mask=m):
            pyro.sample("g", dist.Normal(0.0, 1.0).mask(torch.tensor([False, True, True])))


def scale_model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> Any:
    with poutine.scale(scale=2.0):
        pyro.sample("a", dist.Normal(0.0, 1.0))
        with pyro.plate("N", 10, subsample_size=5) as idx:
            pyro.sample("b", dist.Normal(0.0, 1.0), obs=data[idx])
    with poutine.scale(scale=torch.tensor(3.0)), poutine.scale(scale=2.0):
        pyro.sample("c", dist.Normal(0.0, 1.0))
        pyro.param("p", torch.tensor(1.0))
    with pyro.plate("M", 3), poutine.mask(mask=torch.tensor([True, False, True])):
        with poutine.scale(scale=2.0), poutine.scale(scale=torch.tensor(3.0)):
            pyro.sample("d", dist.Normal(0.0, 1.0), obs=torch.zeros(3))
        with poutine.scale(scale=torch.tensor([1.0, 2.0, 0.5])):
            pyro.sample("e", dist.Normal(0.0, 1.0))


# --- params, factor, deterministic, obs_mask ---------------------------------------------------


def constrained_params_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    pos = pyro.param("pos", torch.tensor([1.0, 2.0]), constraint=dist.constraints.positive)
    simp = pyro.param("simp", torch.tensor([0.2, 0.3, 0.5]), constraint=dist.constraints.simplex)
    unit = pyro.param("unit", torch.tensor(0.3), constraint=dist.constraints.unit_interval)
    itv = pyro.param("itv", torch.tensor(1.5), constraint=dist.constraints.interval(1.0, 3.0))
    gt = pyro.param("gt", torch.tensor(5.0), constraint=dist.constraints.greater_than(2.0))
    chol = pyro.param("chol", torch.tensor([[2.0, 0.0], [0.5, 1.0]]), constraint=dist.constraints.lower_cholesky)
    lazy = pyro.param("lazy", lambda: torch.full((2,), 0.5))
    again = pyro.param("pos", torch.tensor([9.0, 9.0]))
    pyro.sample("w", dist.Dirichlet(simp * 10.0))
    pyro.sample("x", dist.Beta(unit, itv))
    pyro.sample("y", dist.MultivariateNormal(lazy, scale_tril=chol))
    pyro.sample("z", dist.Gamma(pos, gt))
    return [p.unconstrained() for p in (pos, simp, unit, itv, gt, chol, lazy, again)]


def factor_deterministic_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    x = pyro.sample("x", dist.Normal(0.0, 1.0))
    pyro.factor("f", -(x**2))
    d = pyro.deterministic("d", x * 2.0)
    with pyro.plate("N", 3):
        pyro.factor("g", torch.arange(3.0))
        e = pyro.deterministic("e", torch.arange(3.0) + x, event_dim=0)
    m = pyro.deterministic("m", torch.ones(2, 2), event_dim=1)
    return d, e, m


def obs_mask_model(pyro: Any, dist: Any, poutine: Any, data: torch.Tensor) -> Any:
    loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
    with pyro.plate("N", 4):
        y = pyro.sample("y", dist.Normal(loc, 1.0), obs=data, obs_mask=torch.tensor([True, False, True, False]))
    return y


# --- distributions -----------------------------------------------------------------------------


def to_event_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    with pyro.plate("N", 3):
        a = pyro.sample("a", dist.Normal(torch.zeros(3, 2), 1.0).to_event(1))
        b = pyro.sample("b", dist.Normal(0.0, 1.0).expand([3, 4, 2]).to_event(2))
    c = pyro.sample("c", dist.Normal(torch.zeros(2, 5), 1.0).to_event())
    d = pyro.sample("d", dist.Bernoulli(0.3).expand([4]).to_event(1))
    return a, b, c, d


def plate_stack_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    with pyro.plate_stack("ps", (2, 3, 4)):
        x = pyro.sample("x", dist.Normal(0.0, 1.0))
    with pyro.plate_stack("qs", (5,), rightmost_dim=-2):
        y = pyro.sample("y", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    return x, y


def block_plate_model(pyro: Any, dist: Any, poutine: Any, block_plate: Any) -> Any:
    with pyro.plate("data", 3), pyro.plate("other", 2, dim=-2):
        with block_plate("data"):
            x = pyro.sample("x", dist.Normal(0.0, 1.0))
        with block_plate(dim=-2):
            y = pyro.sample("y", dist.Normal(0.0, 1.0))
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
    return x, y, z


def _block_plate_program(b: Backend) -> Any:
    bound = functools.partial(block_plate_model, b.pyro, b.dist, b.poutine, b.block_plate)
    return b.poutine.trace(bound).get_trace()


CASES: dict[str, Callable[[Backend], Any]] = {
    "nested_plates_auto": trace_of(nested_plates_auto, DATA_4x3),
    "nested_plates_explicit_dims": trace_of(nested_plates_explicit_dims),
    "subsample_size": trace_of(subsample_size_model, DATA_10),
    "explicit_subsample": trace_of(explicit_subsample_model, DATA_10),
    "subsample_data_event_dim": trace_of(subsample_data_model, DATA_10, DATA_10x2),
    "nested_subsample": trace_of(nested_subsample_model, DATA_10x6),
    "subsampled_params_event_dim": trace_of(subsampled_params_model),
    "sequential_plates": trace_of(sequential_plates_model),
    "masks": trace_of(mask_model),
    "scales": trace_of(scale_model, DATA_10),
    "constrained_params": trace_of(constrained_params_model),
    "factor_deterministic": trace_of(factor_deterministic_model),
    "obs_mask": trace_of(obs_mask_model, DATA_4),
    "to_event": trace_of(to_event_model),
    "plate_stack": trace_of(plate_stack_model),
    "block_plate": _block_plate_program,
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(CASES))
def test_model_trace_matches_pyro(case: str, seed: int) -> None:
    ours, theirs = run_both(CASES[case], seed=seed)
    assert_traces_match(ours, theirs)


def test_param_store_after_constrained_params_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        b.poutine.trace(functools.partial(constrained_params_model, b.pyro, b.dist, b.poutine)).get_trace()
        store = b.pyro.get_param_store()
        return (
            sorted(store.keys()),
            {name: store[name] for name in store.keys()},
            b.param_leaves(),
        )

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs)


def test_subsampled_param_trace_records_full_value_and_function_sees_slice() -> None:
    ours, theirs = run_both(trace_of(subsampled_params_model))
    for tr in (ours, theirs):
        assert tr.nodes["pp"]["value"].shape == (10,)
        assert tr.nodes["_RETURN"]["value"][0].shape == (3,)
        assert tr.nodes["_RETURN"]["value"][1].shape == (3, 2)
    assert_traces_match(ours, theirs)


def test_dense_graph_edges_match_pyro() -> None:
    def model(pyro: Any, dist: Any, poutine: Any) -> None:
        a = pyro.sample("a", dist.Normal(0.0, 1.0))
        for i in pyro.plate("s", 2):
            b = pyro.sample(f"b{i}", dist.Normal(a, 1.0))
            pyro.sample(f"c{i}", dist.Normal(b, 1.0))
        with pyro.plate("v", 3):
            d = pyro.sample("d", dist.Normal(a, 1.0))
        pyro.sample("e", dist.Normal(d.sum(), 1.0))

    ours, theirs = run_both(trace_of(model, graph_type="dense"))
    assert set(ours.edges) == set(theirs.edges)
    assert ("b0", "b1") not in set(ours.edges)
    assert_traces_match(ours, theirs)
    flat_ours, flat_theirs = run_both(trace_of(model))
    assert set(flat_ours.edges) == set(flat_theirs.edges) == set()


def test_param_only_trace_matches_pyro() -> None:
    def model(pyro: Any, dist: Any, poutine: Any) -> None:
        loc = pyro.param("loc", torch.tensor(0.0))
        sc = pyro.param("sc", torch.tensor(1.0), constraint=dist.constraints.positive)
        with pyro.plate("N", 3):
            pyro.sample("x", dist.Normal(loc, sc))

    def program(b: Backend) -> Any:
        bound = functools.partial(model, b.pyro, b.dist, b.poutine)
        return b.poutine.trace(bound, param_only=True).get_trace()

    ours, theirs = run_both(program)
    assert list(ours.nodes) == list(theirs.nodes) == ["loc", "sc"]
    assert_traces_match(ours, theirs)


def test_trace_as_context_manager_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.poutine.trace() as tracer:
            nested_plates_auto(b.pyro, b.dist, b.poutine, DATA_4x3)
        return tracer.get_trace()

    ours, theirs = run_both(program)
    assert "_INPUT" not in ours.nodes
    assert_traces_match(ours, theirs)


def test_get_plates_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        with b.pyro.plate("a", 3), b.pyro.plate("b", 4, subsample_size=2):
            return [tuple(f) for f in b.poutine.runtime.get_plates()]

    ours, theirs = run_both(program)
    assert ours == theirs


def infer_and_observe_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    a = pyro.sample("a", dist.Bernoulli(0.3), infer={"enumerate": "parallel", "expand": False})
    b = pyro.sample("b", dist.Normal(0.0, 1.0), obs=torch.tensor(0.5), infer={"is_observed": False})
    c = pyro.sample("c", dist.Normal(0.0, 1.0), obs=torch.tensor(0.5), infer={"is_auxiliary": True})
    with pyro.plate("full", 10, subsample_size=10) as idx:
        d = pyro.sample("d", dist.Normal(0.0, 1.0))
    with pyro.plate("tensor_size", torch.tensor(5), subsample_size=2):
        e = pyro.sample("e", dist.Normal(0.0, 1.0))
    return a, b, c, d, e, idx


def module_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    torch.manual_seed(123)
    net = pyro.module("lin", torch.nn.Linear(2, 1))
    x = torch.ones(3, 2)
    with pyro.plate("N", 3):
        pyro.sample("y", dist.Normal(net(x).squeeze(-1), 1.0), obs=torch.zeros(3))
    return sorted(name for name, _ in net.named_parameters())


def nested_traces_model(pyro: Any, dist: Any, poutine: Any) -> Any:
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    inner = poutine.trace(lambda: pyro.sample("b", dist.Normal(a, 1.0))).get_trace()
    return list(inner.nodes)


EXTRA_CASES: dict[str, Callable[[Backend], Any]] = {
    "infer_and_observe": trace_of(infer_and_observe_model),
    "module": trace_of(module_model),
    "nested_traces": trace_of(nested_traces_model),
}


@pytest.mark.parametrize("case", sorted(EXTRA_CASES))
def test_extra_model_trace_matches_pyro(case: str) -> None:
    assert_traces_match(*run_both(EXTRA_CASES[case]))


def test_log_prob_sum_with_site_filter_and_format_shapes_last_site_match_pyro() -> None:
    ours, theirs = run_both(CASES["nested_plates_auto"])
    keep: Callable[[str, Any], bool] = lambda name, site: name != "y"
    assert_same_value(ours.log_prob_sum(keep), theirs.log_prob_sum(keep))
    assert ours.format_shapes(last_site="s") == theirs.format_shapes(last_site="s")
    assert ours.format_shapes(title="Model:") == theirs.format_shapes(title="Model:")
    assert ours.stochastic_nodes == theirs.stochastic_nodes
    assert ours.observation_nodes == theirs.observation_nodes
    assert ours.param_nodes == theirs.param_nodes
    assert ours.reparameterized_nodes == theirs.reparameterized_nodes


def test_observe_outside_inference_warns_like_pyro() -> None:
    import warnings

    def program(b: Backend) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = b.pyro.sample("x", b.dist.Normal(0.0, 1.0), obs=torch.tensor(2.0))
            b.pyro.factor("f", torch.tensor(-1.0))
            d = b.pyro.deterministic("d", torch.tensor(3.0))
        return x, d, [(w.category.__name__, str(w.message)) for w in caught]

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs)

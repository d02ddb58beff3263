"""Predictive(parallel=True, compile=True) against eager Predictive: same seed, same samples; guards, fallbacks."""

from __future__ import annotations

import copy
import pickle
import warnings
from collections.abc import Callable
from typing import Any, cast

import pytest
import torch

import ember
import ember.distributions as dist
from ember.distributions import constraints
from ember.infer import SVI, Predictive, Trace_ELBO
from ember.infer.autoguide import AutoDiagonalNormal, AutoNormal
from ember.nn import PyroModule, PyroSample
from ember.optim import Adam
from ember.poutine.messenger import Message, Messenger

Samples = dict[str, torch.Tensor]


def _data(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=g)
    return x, 1.0 - 2.0 * x + 0.3 * torch.randn(n, generator=g)


def regression(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    a = ember.sample("a", dist.Normal(0.0, 10.0))
    b = ember.sample("b", dist.Normal(0.0, 10.0))
    sigma = ember.sample("sigma", dist.LogNormal(0.0, 1.0))
    with ember.plate("data", len(x)):
        mean = a + b * x
        ember.deterministic("mean", mean)
        return ember.sample("y", dist.Normal(mean, sigma), obs=y)


def mean_field_guide(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    for name in ("a", "b"):
        loc = ember.param(f"{name}_loc", torch.tensor(0.1))
        scale = ember.param(f"{name}_scale", torch.tensor(0.5), constraint=constraints.positive)
        ember.sample(name, dist.Normal(loc, scale))
    ember.sample("sigma", dist.LogNormal(ember.param("s_loc", torch.tensor(-1.0)), 0.2))


class ModuleRegression(PyroModule):
    """The regression as a PyroModule with PyroSample coefficients."""

    def __init__(self) -> None:
        super().__init__()
        self.a: Any = PyroSample(dist.Normal(0.0, 10.0))  # a tensor when read
        self.b: Any = PyroSample(dist.Normal(0.0, 10.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with ember.plate("data", len(x)):
            return ember.sample("y", dist.Normal(self.a + self.b * x, 0.5), obs=y)


_ENCODER = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def local_model(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    with ember.plate("data", len(x)):
        z = ember.sample("z", dist.Normal(0.0, 1.0))
        ember.sample("y", dist.Normal(z + x, 0.5), obs=y)


def amortized_guide(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    out = ember.module("encoder", _ENCODER)(x.unsqueeze(-1))
    with ember.plate("data", len(x)):
        ember.sample("z", dist.Normal(out[:, 0], torch.nn.functional.softplus(out[:, 1])))


def _fresh(kind: str) -> tuple[Callable[..., Any], Callable[..., Any] | None, dict[str, Any]]:
    """A model, its guide (or None) and Predictive options, with the store set up as trained."""
    ember.clear_param_store()
    x, y = _data()
    if kind == "guide":
        return regression, mean_field_guide, {}
    if kind == "auto_normal":
        guide = AutoNormal(regression)
        guide(x, y)
        return regression, guide, {}
    if kind == "auto_diagonal":
        diagonal = AutoDiagonalNormal(regression)
        diagonal(x, y)
        return regression, diagonal, {"return_sites": ["y", "mean", "_RETURN"]}
    if kind == "posterior_samples":
        g = torch.Generator().manual_seed(5)
        draws = {"a": torch.randn(40, generator=g), "b": torch.randn(40, generator=g)}
        return regression, None, {"posterior_samples": draws}
    if kind == "prior":
        return regression, None, {}
    if kind == "pyro_module":
        module = ModuleRegression()
        guide = AutoNormal(module)
        guide(x, y)
        return module, guide, {}
    assert kind == "amortized"
    return local_model, amortized_guide, {}


KINDS = ["guide", "auto_normal", "auto_diagonal", "posterior_samples", "prior", "pyro_module", "amortized"]


def _calls(predictive: Predictive, x: torch.Tensor, seeds: range) -> list[Samples]:
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(predictive(x))
    return out


def _assert_same(compiled: list[Samples], eager: list[Samples]) -> None:
    for got, want in zip(compiled, eager):
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].shape == want[name].shape, name
            torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-6, msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_calls_give_the_samples_of_eager_calls(kind: str) -> None:
    model, guide, options = _fresh(kind)
    x, _ = _data()
    num_samples = None if "posterior_samples" in options else 50
    eager = Predictive(model, guide=guide, num_samples=num_samples, parallel=True, **options)
    compiled = Predictive(model, guide=guide, num_samples=num_samples, parallel=True, compile=True, backend=None, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback
        got = _calls(compiled, x, range(4))
    _assert_same(got, _calls(eager, x, range(4)))
    assert compiled._captured is not None
    assert [graph.calls if graph else None for graph in compiled._captured.graphs.values()] == [3]
    # Fresh draws per call, not one frozen sample.
    assert not torch.equal(got[1]["y"], got[2]["y"])


def test_inductor_backend_gives_the_samples_of_eager_calls() -> None:
    model, guide, _ = _fresh("auto_normal")
    x, _ = _data()
    eager = Predictive(model, guide=guide, num_samples=20, parallel=True)
    compiled = Predictive(model, guide=guide, num_samples=20, parallel=True, compile=True)
    _assert_same(_calls(compiled, x, range(3)), _calls(eager, x, range(3)))


def test_replayed_calls_do_not_run_the_model_and_draw_what_eager_draws() -> None:
    runs = [0]

    def model(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        runs[0] += 1
        return regression(x, y)

    ember.clear_param_store()
    x, _ = _data()
    predictive = Predictive(model, guide=mean_field_guide, num_samples=10, parallel=True, compile=True, backend=None)
    predictive(x)
    after_capture = runs[0]
    for _ in range(5):
        predictive(x)
    assert runs[0] == after_capture
    # The random stream after a replayed call is where an eager call leaves it.
    eager = Predictive(model, guide=mean_field_guide, num_samples=10, parallel=True)
    torch.manual_seed(3)
    eager(x)
    after_eager = torch.rand(3)
    torch.manual_seed(3)
    predictive(x)
    torch.testing.assert_close(torch.rand(3), after_eager, rtol=0.0, atol=0.0)


def test_params_trained_between_calls_are_read_by_the_graph() -> None:
    model, guide, _ = _fresh("guide")
    x, y = _data()
    assert guide is not None
    compiled = Predictive(model, guide=guide, num_samples=30, parallel=True, compile=True, backend=None)
    eager = Predictive(model, guide=guide, num_samples=30, parallel=True)
    compiled(x)  # captures with the initial params
    svi = SVI(model, guide, Adam({"lr": 0.1}), Trace_ELBO())
    for _ in range(20):
        svi.step(x, y)
    ember.get_param_store()["a_scale"] = torch.tensor(0.01)  # a replaced leaf as well as stepped ones
    _assert_same(_calls(compiled, x, range(2)), _calls(eager, x, range(2)))
    assert compiled._captured is not None and len(compiled._captured.graphs) == 1


def test_new_input_shapes_get_their_own_graph_and_old_ones_keep_theirs() -> None:
    model, guide, _ = _fresh("auto_normal")
    x, _ = _data()
    compiled = Predictive(model, guide=guide, num_samples=15, parallel=True, compile=True, backend=None)
    eager = Predictive(model, guide=guide, num_samples=15, parallel=True)
    inputs = [x, x[:7], x, x[:7], torch.linspace(-2, 2, 11)]
    got, want = [], []
    for i, value in enumerate(inputs):
        torch.manual_seed(i)
        got.append(compiled(value))
        torch.manual_seed(i)
        want.append(eager(value))
    _assert_same(got, want)
    assert compiled._captured is not None
    assert sorted(graph.calls for graph in compiled._captured.graphs.values() if graph) == [0, 1, 1]


def _branching(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    a = ember.sample("a", dist.Normal(0.0, 1.0))
    scale = 0.5 if float(a.mean()) > 0 else 2.0  # the structure depends on a drawn value
    with ember.plate("data", len(x)):
        ember.sample("y", dist.Normal(a + x, scale), obs=y)


def _non_tensor_return(x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    return {"y": regression(x, y)}


@pytest.mark.parametrize(
    "model, return_sites, reason",
    [
        (_branching, (), "data-dependent control flow"),
        (_non_tensor_return, ["_RETURN"], "not a tensor"),
    ],
    ids=["data-dependent", "non-tensor-return"],
)
def test_uncapturable_calls_run_eagerly_with_one_warning(model: Callable[..., Any], return_sites: list[str], reason: str) -> None:
    ember.clear_param_store()
    x, _ = _data()
    compiled = Predictive(model, num_samples=8, parallel=True, return_sites=return_sites, compile=True, backend=None)
    eager = Predictive(model, num_samples=8, parallel=True, return_sites=return_sites)
    with pytest.warns(UserWarning, match=reason) as record:
        got = _calls(compiled, x, range(3))
    assert len(record) == 1 and "runs eagerly" in str(record[0].message)
    want = _calls(eager, x, range(3))
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in w:
            # A non-tensor _RETURN is the model's value (here a dict) from the one vectorized run.
            a, b = (g[k], w[k]) if k != "_RETURN" else (cast(Any, g[k])["y"], cast(Any, w[k])["y"])
            assert torch.equal(a, b), k
    assert compiled._captured is not None and list(compiled._captured.graphs.values()) == [None]


def test_calls_inside_handlers_run_eagerly_with_one_warning() -> None:
    model, guide, _ = _fresh("guide")
    x, _ = _data()
    compiled = Predictive(model, guide=guide, num_samples=5, parallel=True, compile=True, backend=None)
    compiled(x)
    compiled(x)
    seen: list[str] = []

    class Count(Messenger):
        def _pyro_sample(self, msg: Message) -> None:
            seen.append(str(msg["name"]))

    with pytest.warns(UserWarning, match="inside handlers") as record:
        for _ in range(2):
            with Count():
                compiled(x)
    assert len(record) == 1
    assert seen.count("y") >= 2  # the handler saw the sites of both calls: they ran eagerly


def test_compile_needs_parallel() -> None:
    with pytest.raises(ValueError, match="needs parallel=True"):
        Predictive(regression, num_samples=3, compile=True)


def test_capture_leaves_the_param_store_as_it_was() -> None:
    model, guide, _ = _fresh("auto_normal")
    x, _ = _data()
    before = {name: value.detach().clone() for name, value in ember.get_param_store().items()}
    Predictive(model, guide=guide, num_samples=5, parallel=True, compile=True, backend=None)(x)
    after = dict(ember.get_param_store().items())
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name].detach(), value) for name, value in before.items())


def test_a_compiled_predictive_pickles_and_captures_again() -> None:
    model, guide, _ = _fresh("guide")
    x, _ = _data()
    compiled = Predictive(model, guide=guide, num_samples=6, parallel=True, compile=True, backend=None)
    compiled(x)
    compiled(x)
    for clone in (pickle.loads(pickle.dumps(compiled)), copy.deepcopy(compiled)):
        assert clone._captured is None
        torch.manual_seed(0)
        got = clone(x)
        torch.manual_seed(0)
        _assert_same([got], [compiled(x)])

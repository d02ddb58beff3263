"""``ember.nn.module``: PyroModule attributes as params and samples, store sync, conversion, pickling."""

from __future__ import annotations

import importlib
import io
from typing import Any, cast

import pytest
import torch
from torch import nn

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints
from ember.nn import PyroModule, PyroModuleList, PyroParam, PyroSample, pyro_method
from ember.nn.module import clear, to_pyro_module_
from tests.parity._backends import Backend, assert_same_error, assert_traces_match, run_both

# Attributes assigned a PyroParam or PyroSample read as tensors; such attributes are annotated
# ``Any`` below, since mypy types an attribute by the value first assigned to it.
# ``PyroModule[nn.Linear]`` is typed as ``nn.Linear``; annotated, mypy reads it as an expression
# (unannotated, as a generic alias).
PyroLinear: type[nn.Linear] = PyroModule[nn.Linear]


def _nn(backend: Backend) -> Any:
    return importlib.import_module(f"{backend.pyro.__name__}.nn")


def _site_names(tr: Any) -> list[tuple[str, str]]:
    return [(name, site["type"]) for name, site in tr.nodes.items() if site["type"] in ("param", "sample")]


# ---------------------------------------------------------------------------------------------
# Module-level classes, so that torch.save can pickle their instances.


class Regression(PyroModule):
    """A Bayesian linear layer: a random weight, a learned positive noise scale, a plain bias."""

    def __init__(self) -> None:
        super().__init__("reg")
        self.linear: Any = cast(Any, PyroLinear(3, 1))
        self.linear.weight = PyroSample(dist.Normal(0.0, 1.0).expand([1, 3]).to_event(2))
        self.noise: Any = PyroParam(torch.tensor(0.5), constraint=constraints.positive)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        mean: torch.Tensor = self.linear(x).squeeze(-1)
        with ember.plate("data", x.shape[0]):
            ember.sample("y", dist.Normal(mean, self.noise), obs=y)
        return mean


class Decorated(PyroModule):
    """Params and samples declared with the decorator forms."""

    @PyroParam
    def bias(self) -> torch.Tensor:
        return torch.zeros(2)

    @PyroParam(constraint=constraints.positive, event_dim=1)
    def spread(self) -> torch.Tensor:
        return torch.full((2,), 2.0)

    @PyroSample
    def shift(self) -> Any:
        return dist.Normal(self.bias.sum(), 1.0)

    def forward(self) -> torch.Tensor:
        total: torch.Tensor = self.bias + self.spread + self.shift
        return total


X = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [0.0, 1.0, 1.0], [2.0, 2.0, -1.0]])
Y = torch.tensor([1.0, -0.5, 0.3, 2.0])


# ---------------------------------------------------------------------------------------------
# Sites


def test_attributes_record_sites_named_by_their_dotted_path() -> None:
    model = Regression()
    tr = poutine.trace(model).get_trace(X, Y)
    assert _site_names(tr) == [
        ("reg.linear.weight", "sample"),
        ("reg.linear.bias", "param"),
        ("data", "sample"),
        ("reg.noise", "param"),
        ("y", "sample"),
    ]
    assert tr.nodes["reg.noise"]["value"].item() == pytest.approx(0.5)
    assert tr.nodes["reg.linear.weight"]["value"].shape == (1, 3)
    assert sorted(ember.get_param_store().keys()) == ["reg.linear.bias", "reg.noise"]
    assert ember.get_param_store()._constraints["reg.noise"] is constraints.positive


def test_plain_submodules_register_through_module_names() -> None:
    class WithPlain(PyroModule):
        def __init__(self) -> None:
            super().__init__("outer")
            self.inner = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = self.inner(x)
            return result

    tr = poutine.trace(WithPlain()).get_trace(torch.ones(2))
    assert _site_names(tr) == [("outer.inner$$$weight", "param"), ("outer.inner$$$bias", "param")]


def test_samples_are_cached_within_a_call_and_fresh_across_calls() -> None:
    class Twice(PyroModule):
        def __init__(self) -> None:
            super().__init__()
            self.z: Any = PyroSample(dist.Normal(0.0, 1.0))
            self.dependent: Any = PyroSample(lambda self: dist.Normal(self.z, 0.1))
            self.doubled: Any = PyroSample(lambda self: 2 * self.z)

        def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
            assert self.z is self.z
            return self.z, self.dependent

    model = Twice()
    tr = poutine.trace(model).get_trace()
    assert _site_names(tr) == [("z", "sample"), ("dependent", "sample")]
    first = tr.nodes["z"]["value"]
    assert poutine.trace(model).get_trace().nodes["z"]["value"] != first
    with model._pyro_context:
        doubled_tr = poutine.trace(lambda: model.doubled).get_trace()
    site = doubled_tr.nodes["doubled"]
    assert site["infer"].get("_deterministic") and torch.equal(site["value"], 2 * doubled_tr.nodes["z"]["value"])


def test_handlers_see_module_sites_by_full_name() -> None:
    weight = torch.tensor([[1.0, 2.0, 3.0]])
    conditioned = poutine.condition(Regression(), data={"reg.linear.weight": weight})
    tr = poutine.trace(conditioned).get_trace(X, Y)
    assert torch.equal(tr.nodes["reg.linear.weight"]["value"], weight) and tr.nodes["reg.linear.weight"]["is_observed"]
    substituted = poutine.substitute(Regression(), data={"reg.noise": torch.tensor(9.0)})
    likelihood: Any = poutine.trace(substituted).get_trace(X, Y).nodes["y"]["fn"]
    assert likelihood.scale.tolist() == [9.0] * 4


def test_reading_outside_a_call_records_nothing() -> None:
    model = Regression()
    with poutine.trace() as tracer:
        noise = model.noise
        weight = model.linear.weight
    assert list(tracer.trace.nodes) == [] and list(ember.get_param_store()) == []
    assert noise.item() == pytest.approx(0.5) and noise.unconstrained() is model.noise_unconstrained
    assert weight.shape == (1, 3)


def test_pyro_method_runs_in_the_call_context() -> None:
    class Coin(PyroModule):
        def __init__(self) -> None:
            super().__init__("coin")
            self.p: Any = PyroSample(dist.Beta(2.0, 2.0))

        @pyro_method
        def flips(self, n: int) -> list[torch.Tensor]:
            return [self.p for _ in range(n)]

    coin = Coin()
    tr = poutine.trace(coin.flips).get_trace(3)
    assert _site_names(tr) == [("coin.p", "sample")]
    assert coin._pyro_context.active == 0 and coin._pyro_context.cache == {}


def test_param_event_dim_lets_a_subsampled_plate_slice_it() -> None:
    class Local(PyroModule):
        def __init__(self) -> None:
            super().__init__()
            self.loc: Any = PyroParam(torch.arange(6.0), event_dim=0)

        def forward(self) -> torch.Tensor:
            with ember.plate("data", 6, subsample=torch.tensor([1, 4])):
                result: torch.Tensor = self.loc
                return result

    assert Local()().tolist() == [1.0, 4.0]


def test_decorators_declare_lazy_params_and_samples() -> None:
    tr = poutine.trace(Decorated()).get_trace()
    assert _site_names(tr) == [("bias", "param"), ("spread", "param"), ("shift", "sample")]
    assert tr.nodes["spread"]["kwargs"]["event_dim"] == 1
    assert ember.get_param_store()["spread"].tolist() == [2.0, 2.0]


# ---------------------------------------------------------------------------------------------
# Param store synchronisation


def test_store_values_win_over_module_values() -> None:
    model = Regression()
    model(X, Y)
    ember.get_param_store()["reg.noise"] = torch.tensor(3.0)
    model(X, Y)
    assert model.noise.item() == pytest.approx(3.0)
    assert model.noise_unconstrained is ember.get_param_store()._params["reg.noise"]
    assert isinstance(model.noise_unconstrained, nn.Parameter)


def test_module_and_store_hold_the_same_leaf() -> None:
    model = Regression()
    model(X, Y)
    store = ember.get_param_store()
    assert store._params["reg.noise"] is model.noise_unconstrained
    assert store._params["reg.linear.bias"] is model.linear._parameters["bias"]
    assert store.param_name(model.noise_unconstrained) == "reg.noise"


def test_assigning_a_tensor_updates_a_param_in_place() -> None:
    model = Regression()
    model(X, Y)
    leaf = model.noise_unconstrained
    model.noise = torch.tensor(2.0)
    assert model.noise_unconstrained is leaf and ember.get_param_store()["reg.noise"].item() == pytest.approx(2.0)


def test_two_modules_with_one_name_share_data() -> None:
    first, second = Regression(), Regression()
    first(X, Y)
    first.noise = torch.tensor(4.0)
    second(X, Y)
    assert second.noise.item() == pytest.approx(4.0)


def test_deleting_attributes_removes_them_from_the_store() -> None:
    model = Regression()
    model(X, Y)
    del model.noise
    assert sorted(ember.get_param_store()) == ["reg.linear.bias"]
    del model.linear
    assert list(ember.get_param_store()) == []
    assert "noise" not in model._pyro_params and not hasattr(model, "noise_unconstrained")


def test_deleting_a_submodule_spares_params_that_only_share_its_prefix() -> None:
    root = PyroModule("root")
    root.a = PyroLinear(1, 1)
    root.a2 = PyroLinear(1, 1)
    root.plain = nn.Linear(1, 1)
    with root._pyro_context:  # read each once, as inside a call
        root.a.weight, root.a2.weight, root.plain
    assert sorted(ember.get_param_store()) == ["root.a.weight", "root.a2.weight", "root.plain$$$bias", "root.plain$$$weight"]
    del root.a
    del root.plain
    assert list(ember.get_param_store()) == ["root.a2.weight"]  # Pyro would also drop root.a2.weight


def test_clear_empties_module_and_store() -> None:
    model = Regression()
    model(X, Y)
    clear(model)
    assert list(ember.get_param_store()) == [] and list(model.parameters()) == []


def test_named_pyro_params_yields_constrained_values_by_attribute_name() -> None:
    model = Regression()
    named = dict(model.named_pyro_params())
    assert sorted(named) == ["linear.bias", "noise"]
    assert named["noise"].item() == pytest.approx(0.5)


def test_bad_constraint_raises_as_pyro_and_keeps_the_old_value() -> None:
    def program(backend: Backend) -> None:
        root = _nn(backend).PyroModule("m")
        with root._pyro_context:
            root.flag = _nn(backend).PyroParam(torch.tensor(1.0), constraint=constraints.boolean)

    ours, _ = assert_same_error(program)
    assert isinstance(ours, NotImplementedError) and str(ours).startswith("PyroParam 'flag': ")

    root: Any = PyroModule("m")
    with root._pyro_context:
        root.flag = PyroParam(torch.tensor(0.5), constraint=constraints.unit_interval)
        with pytest.raises(NotImplementedError):
            root.flag = PyroParam(torch.tensor(1.0), constraint=constraints.boolean)
        assert root.flag.item() == pytest.approx(0.5)
    assert ember.get_param_store()["m.flag"].item() == pytest.approx(0.5)
    assert ember.get_param_store()._constraints["m.flag"] is constraints.unit_interval


def test_a_module_called_on_its_own_cannot_become_a_submodule() -> None:
    holder = PyroModule("holder")
    holder.inner = PyroLinear(2, 1)
    holder.inner(torch.ones(2))  # runs in holder's context, which is now used
    with pytest.raises(AssertionError, match="submodule outer.holder has executed outside of supermodule"):
        PyroModule("outer").holder = holder


# ---------------------------------------------------------------------------------------------
# Mixins and conversion


def test_class_indexing_builds_and_caches_mixins() -> None:
    assert PyroLinear is PyroModule[nn.Linear]
    assert PyroModule[nn.Module] is PyroModule
    assert PyroModule[Regression] is Regression
    layer = PyroLinear(3, 2)
    assert type(layer).__name__ == "PyroLinear" and isinstance(layer, nn.Linear) and isinstance(layer, PyroModule)
    assert PyroModule[nn.ModuleList] is PyroModuleList


def test_to_pyro_module_converts_in_place() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    to_pyro_module_(net)
    assert type(net).__name__ == "PyroSequential" and type(net[0]).__name__ == "PyroLinear"
    tr = poutine.trace(net).get_trace(torch.ones(2))
    assert _site_names(tr) == [("0.weight", "param"), ("0.bias", "param"), ("2.weight", "param"), ("2.bias", "param")]
    with pytest.raises(TypeError, match="Expected an nn.Module instance but got a <class 'int'>"):
        to_pyro_module_(3)  # type: ignore[arg-type]  # the error under test


def test_converted_rnn_reads_its_weights_afresh() -> None:
    rnn: Any = nn.RNN(2, 3, batch_first=True)
    to_pyro_module_(rnn)
    rnn.weight_hh_l0 = PyroSample(dist.Normal(0.0, 1.0).expand([3, 3]).to_event(2))
    tr = poutine.trace(rnn).get_trace(torch.ones(1, 4, 2))
    assert ("weight_hh_l0", "sample") in _site_names(tr)
    assert tr.nodes["_RETURN"]["value"][0].shape == (1, 4, 3)


def test_module_list_slices_keep_site_names() -> None:
    class Stack(PyroModule):
        def __init__(self) -> None:
            super().__init__("stack")
            self.layers = PyroModuleList([PyroLinear(2, 2) for _ in range(3)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers[1:]:
                x = layer(x)
            return x

    model = Stack()
    assert type(model.layers[1:]).__name__ == "ModuleList"
    tr = poutine.trace(model).get_trace(torch.ones(2))
    assert [name for name, _ in _site_names(tr)] == [
        "stack.layers.1.weight",
        "stack.layers.1.bias",
        "stack.layers.2.weight",
        "stack.layers.2.bias",
    ]


# ---------------------------------------------------------------------------------------------
# Persistence


def test_torch_save_round_trip_samples_the_same_values() -> None:
    model = Regression()
    model(X, Y)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    ember.clear_param_store()
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded.linear).__name__ == "PyroLinear"
    torch.manual_seed(3)
    expected = model(X)
    torch.manual_seed(3)
    assert torch.equal(loaded(X), expected)
    assert sorted(loaded.state_dict()) == ["linear.bias", "noise_unconstrained"]


def test_decorated_module_pickles() -> None:
    model = Decorated()
    model()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    ember.clear_param_store()
    loaded = torch.load(buffer, weights_only=False)
    assert sorted(loaded.state_dict()) == ["bias_unconstrained", "spread_unconstrained"]
    assert loaded.spread.tolist() == [2.0, 2.0]


def test_state_dict_round_trip_restores_params() -> None:
    model = Regression()
    model(X, Y)
    model.noise = torch.tensor(1.5)
    state = model.state_dict()
    ember.clear_param_store()
    fresh = Regression()
    fresh.load_state_dict(state)
    fresh(X, Y)
    assert fresh.noise.item() == pytest.approx(1.5)
    assert ember.get_param_store()["reg.noise"].item() == pytest.approx(1.5)


# ---------------------------------------------------------------------------------------------
# Parity with pyro-ppl


def _regression_program(backend: Backend) -> Any:
    pyro_nn, d = _nn(backend), backend.dist

    base: Any = pyro_nn.PyroModule

    class Model(base):  # type: ignore[misc]  # pyro's classes are untyped (Any)
        def __init__(self) -> None:
            super().__init__("reg")
            self.linear = pyro_nn.PyroModule[nn.Linear](3, 1)
            self.linear.weight = pyro_nn.PyroSample(d.Normal(0.0, 1.0).expand([1, 3]).to_event(2))
            self.noise = pyro_nn.PyroParam(torch.tensor(0.5), constraint=constraints.positive)
            self.offset = pyro_nn.PyroSample(lambda self: d.Normal(self.noise, 1.0))
            self.plain = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> Any:
            mean = self.linear(self.plain(x)).squeeze(-1) + self.offset
            with backend.pyro.plate("data", x.shape[0]):
                backend.pyro.sample("y", d.Normal(mean, self.noise), obs=y)
            return mean

    model = Model()
    first = backend.poutine.trace(model).get_trace(X, Y)
    backend.pyro.get_param_store()["reg.noise"] = torch.tensor(2.0)
    second = backend.poutine.trace(model).get_trace(X, Y)
    return first, second, sorted(model.state_dict()), sorted(n for n, _ in model.named_pyro_params())


def test_module_traces_match_pyro() -> None:
    ours, theirs = run_both(_regression_program)
    assert_traces_match(ours[0], theirs[0])
    assert_traces_match(ours[1], theirs[1])
    assert ours[2:] == theirs[2:]
    assert ours[1].nodes["reg.noise"]["value"].item() == pytest.approx(2.0)


def test_converted_sequential_matches_pyro() -> None:
    def program(backend: Backend) -> Any:
        net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        _nn(backend).module.to_pyro_module_(net)
        net[0].weight = _nn(backend).PyroSample(backend.dist.Normal(0.0, 1.0).expand([3, 2]).to_event(2))
        return backend.poutine.trace(net).get_trace(torch.ones(2))

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)


def test_ember_nn_exports_every_public_name_of_pyro_nn() -> None:
    import importlib

    import ember.nn

    pyro_nn = importlib.import_module("pyro.nn")
    assert sorted(set(pyro_nn.__all__) - set(ember.nn.__all__)) == []

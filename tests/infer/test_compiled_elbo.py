"""CompiledTrace_ELBO against eager Trace_ELBO: same seed, same losses and params; guards and fallbacks."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
import torch

import ember
import ember.distributions as dist
import ember.optim
from ember.distributions import constraints
from ember.infer import SVI, Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO, config_enumerate
from ember.infer._capture import CapturedStep
from ember.infer.compiled_elbo import CompiledTrace_ELBO, CompiledTraceEnum_ELBO, CompiledTraceMeanField_ELBO
from ember.infer.elbo import ELBO
from ember.optim import Adam
from tests.infer._static_models import cases, mean_field_guide, regression, subsampled, subsampled_guide

# The 200 steps: small models, and the graphs replayed without torch.compile (backend=None).
STEPS = 200

Params = dict[str, torch.Tensor]
Steps = Sequence[tuple[tuple[Any, ...], dict[str, Any]]]


def _fit(
    elbo: ELBO,
    model: Callable[..., Any],
    guide: Callable[..., Any],
    steps: Steps,
) -> tuple[torch.Tensor, Params, SVI]:
    ember.clear_param_store()
    torch.manual_seed(0)
    svi = SVI(model, guide, Adam({"lr": 0.05}), elbo)
    losses = [svi.step(*args, **kwargs) for args, kwargs in steps]
    params = {name: value.detach().clone() for name, value in ember.get_param_store().items()}
    return torch.tensor(losses, dtype=torch.float64), params, svi


def _assert_same(eager: tuple[torch.Tensor, Params, SVI], compiled: tuple[torch.Tensor, Params, SVI]) -> None:
    torch.testing.assert_close(compiled[0], eager[0], rtol=2e-6, atol=1e-4)
    assert compiled[1].keys() == eager[1].keys()
    for name in eager[1]:
        torch.testing.assert_close(compiled[1][name], eager[1][name], rtol=1e-5, atol=1e-6, msg=name)


def _eager_then_compiled(
    train: Callable[[SVI], list[float]],
    model: Callable[..., Any] | None = None,
    guide: Callable[..., Any] | None = None,
    make_optim: Callable[[], ember.optim.PyroOptim] = lambda: Adam({"lr": 0.05}),
) -> list[tuple[torch.Tensor, Params, SVI]]:
    """``train`` run on a fresh store and seed with eager Trace_ELBO, then with the compiled one."""
    default_model, default_guide, _, _ = cases()["mean_field"]
    runs = []
    for elbo in (Trace_ELBO(), CompiledTrace_ELBO(backend=None)):
        ember.clear_param_store()
        torch.manual_seed(0)
        svi = SVI(model or default_model, guide or default_guide, make_optim(), elbo)
        losses = train(svi)
        params = {name: value.detach().clone() for name, value in ember.get_param_store().items()}
        runs.append((torch.tensor(losses, dtype=torch.float64), params, svi))
    return runs


@pytest.mark.parametrize("name", sorted(cases()))
def test_compiled_steps_equal_eager_steps(name: str) -> None:
    model, guide, args, options = cases()[name]
    eager = _fit(Trace_ELBO(**options), model, guide, [(args, {})] * STEPS)
    model, guide, args, options = cases()[name]
    elbo = CompiledTrace_ELBO(backend=None, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, no structure change
        compiled = _fit(elbo, model, guide, [(args, {})] * STEPS)
    _assert_same(eager, compiled)
    assert elbo._captured is not None and len(elbo._captured.entries) == 1
    assert all(not entry.eager and entry.calls == STEPS - 1 for entry in elbo._captured.entries.values())


def test_compiled_mean_field_equals_eager_mean_field() -> None:
    model, guide, args, _ = cases()["mean_field"]
    eager = _fit(TraceMeanField_ELBO(), model, guide, [(args, {})] * STEPS)
    compiled = _fit(CompiledTraceMeanField_ELBO(backend=None), model, guide, [(args, {})] * STEPS)
    _assert_same(eager, compiled)


def test_aot_eager_backend_equals_eager_and_times_its_compile() -> None:
    model, guide, args, _ = cases()["subsample"]
    eager = _fit(Trace_ELBO(), model, guide, [(args, {})] * 10)
    elbo = CompiledTrace_ELBO(backend="aot_eager")
    _assert_same(eager, _fit(elbo, model, guide, [(args, {})] * 10))
    assert elbo.compile_seconds > 0.0


def test_inductor_backend_equals_eager() -> None:
    # The real backend, on the smallest model: inductor keeps torch's RNG (fallback_random).
    model, guide, args, _ = cases()["subsample"]
    eager = _fit(Trace_ELBO(), model, guide, [(args, {})] * 5)
    _assert_same(eager, _fit(CompiledTrace_ELBO(), model, guide, [(args, {})] * 5))


def test_replayed_steps_do_not_run_the_model() -> None:
    calls = [0]

    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        calls[0] += 1
        regression(x, y)

    _, _, args, _ = cases()["mean_field"]
    _fit(CompiledTrace_ELBO(backend=None), model, mean_field_guide, [(args, {})] * 6)
    assert calls[0] == 2  # the eager first step and the capture


def test_new_subsample_size_recompiles_with_one_warning_and_stays_correct() -> None:
    _, _, (x, y), _ = cases()["subsample"]
    steps: Steps = [((x, y, 8), {})] * 5 + [((x, y, 5), {})] * 5 + [((x, y, 8), {})] * 5
    eager = _fit(Trace_ELBO(), subsampled, subsampled_guide, steps)
    elbo = CompiledTrace_ELBO(backend=None)
    with pytest.warns(UserWarning, match="the arguments' shapes, dtypes or values changed since the last step") as record:
        compiled = _fit(elbo, subsampled, subsampled_guide, steps)
    assert len([w for w in record if "changed" in str(w.message)]) == 1
    _assert_same(eager, compiled)
    assert elbo._captured is not None and len(elbo._captured.entries) == 2


def test_new_data_shape_recompiles_and_stays_correct() -> None:
    _, _, (x, y), _ = cases()["mean_field"]
    steps: Steps = [((x, y), {})] * 4 + [((x[:30], y[:30]), {})] * 4
    eager = _fit(Trace_ELBO(), regression, mean_field_guide, steps)
    with pytest.warns(UserWarning, match="changed since the last step"):
        compiled = _fit(CompiledTrace_ELBO(backend=None), regression, mean_field_guide, steps)
    _assert_same(eager, compiled)


def _model_with_optional_site(x: torch.Tensor, y: torch.Tensor, extra: bool = False) -> None:
    regression(x, y)
    if extra:
        ember.sample("b", dist.Normal(0.0, 1.0))


def _guide_with_optional_site(x: torch.Tensor, y: torch.Tensor, extra: bool = False) -> None:
    mean_field_guide(x, y)
    if extra:
        ember.sample("b", dist.Normal(ember.param("b_loc", torch.tensor(0.5)), 1.0))


def test_new_site_recompiles_and_steps_the_new_param() -> None:
    _, _, args, _ = cases()["mean_field"]
    steps: Steps = [(args, {})] * 4 + [(args, {"extra": True})] * 4
    eager = _fit(Trace_ELBO(), _model_with_optional_site, _guide_with_optional_site, steps)
    with pytest.warns(UserWarning, match="changed since the last step"):
        compiled = _fit(CompiledTrace_ELBO(backend=None), _model_with_optional_site, _guide_with_optional_site, steps)
    _assert_same(eager, compiled)
    assert "b_loc" in compiled[1] and compiled[1]["b_loc"].item() != 0.5


def _branching_model(x: torch.Tensor, y: torch.Tensor) -> None:
    w = ember.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    scale = 0.5 if w.sum() > 0 else 2.0  # the structure depends on a drawn value
    with ember.plate("data", len(x)):
        ember.sample("y", dist.Normal(x @ w, scale), obs=y)


def test_data_dependent_control_flow_runs_eagerly_with_the_message() -> None:
    _, _, args, _ = cases()["mean_field"]
    eager = _fit(Trace_ELBO(), _branching_model, subsampled_guide, [(args, {})] * 8)
    elbo = CompiledTrace_ELBO(backend=None)
    with pytest.warns(UserWarning, match="data-dependent control flow") as record:
        compiled = _fit(elbo, _branching_model, subsampled_guide, [(args, {})] * 8)
    assert len(record) == 1
    assert "runs eagerly" in str(record[0].message)
    torch.testing.assert_close(compiled[0], eager[0], rtol=0.0, atol=0.0)  # eager is eager: bit for bit
    assert elbo._captured is not None and all(entry.eager for entry in elbo._captured.entries.values())


_FREE = torch.tensor([0.3, -0.2, 0.1], requires_grad=True)


def _model_with_free_tensor(x: torch.Tensor, y: torch.Tensor) -> None:
    w = ember.sample("w", dist.Normal(_FREE, 1.0).to_event(1))
    with ember.plate("data", len(x)):
        ember.sample("y", dist.Normal(x @ w, 0.5), obs=y)


def test_tensor_needing_grad_outside_the_param_store_runs_eagerly() -> None:
    _, _, args, _ = cases()["mean_field"]
    with pytest.warns(UserWarning, match="not read through `ember.param`"):
        _fit(CompiledTrace_ELBO(backend=None), _model_with_free_tensor, subsampled_guide, [(args, {})] * 3)


def test_more_structures_than_max_graphs_run_eagerly() -> None:
    _, _, (x, y), _ = cases()["mean_field"]
    steps: Steps = [((x[:n], y[:n]), {}) for n in (40, 40, 30, 30, 20, 20)]
    eager = _fit(Trace_ELBO(), regression, mean_field_guide, steps)
    with pytest.warns(UserWarning, match="max_graphs"):
        compiled = _fit(CompiledTrace_ELBO(backend=None, max_graphs=2), regression, mean_field_guide, steps)
    _assert_same(eager, compiled)


def test_optimizer_and_param_store_state_round_trip_as_in_eager() -> None:
    model, guide, args, _ = cases()["auto_normal"]
    eager = _fit(Trace_ELBO(), model, guide, [(args, {})] * 10)
    eager_state = eager[2].optim.get_state()
    model, guide, args, _ = cases()["auto_normal"]
    compiled = _fit(CompiledTrace_ELBO(backend=None), model, guide, [(args, {})] * 10)
    compiled_state = compiled[2].optim.get_state()
    assert compiled_state.keys() == eager_state.keys()
    for name, state in eager_state.items():
        torch.testing.assert_close(compiled_state[name]["state"], state["state"], rtol=1e-5, atol=1e-6)
        assert compiled_state[name]["param_groups"] == state["param_groups"]
    # Reload both states into a fresh SVI and continue: the compiled steps still match eager ones.
    store_state = ember.get_param_store().get_state()
    continued = []
    for elbo in (Trace_ELBO(), CompiledTrace_ELBO(backend=None)):
        # Deep copies: both hold the very tensors that the steps update in place.
        ember.get_param_store().set_state(copy.deepcopy(store_state))
        optim = Adam({"lr": 0.05})
        optim.set_state(copy.deepcopy(cast(dict[str, Any], compiled_state)))
        torch.manual_seed(1)
        svi = SVI(model, guide, optim, elbo)
        continued.append(torch.tensor([svi.step(*args) for _ in range(5)]))
    torch.testing.assert_close(continued[1], continued[0], rtol=2e-6, atol=1e-4)


def test_step_inside_other_handlers_runs_eagerly_with_one_warning() -> None:
    model, guide, args, _ = cases()["mean_field"]
    steps: Steps = [(args, {})] * 4

    def scaled_fit(elbo: ELBO) -> torch.Tensor:
        ember.clear_param_store()
        torch.manual_seed(0)
        svi = SVI(model, guide, Adam({"lr": 0.05}), elbo)
        losses = [svi.step(*args)]
        with ember.poutine.scale(scale=3.0):
            losses += [svi.step(*a, **k) for a, k in steps]
        return torch.tensor(losses)

    eager = scaled_fit(Trace_ELBO())
    with pytest.warns(UserWarning, match="handlers other than SVI's own") as record:
        compiled = scaled_fit(CompiledTrace_ELBO(backend=None))
    assert len(record) == 1
    torch.testing.assert_close(compiled, eager, rtol=2e-6, atol=1e-4)


def test_svi_steps_after_the_capture_run_whole_from_the_graph_and_leave_zero_grads(monkeypatch: pytest.MonkeyPatch) -> None:
    model, guide, args, _ = cases()["mean_field"]
    eager = _fit(Trace_ELBO(), model, guide, [(args, {})] * 10)
    eager_grads = {name: leaf.grad for name, leaf in ember.get_param_store().named_parameters()}
    runs = [0]
    original = CapturedStep._run

    def counting_run(self: CapturedStep, *a: Any) -> float:
        runs[0] += 1
        return original(self, *a)

    monkeypatch.setattr(CapturedStep, "_run", counting_run)
    elbo = CompiledTrace_ELBO(backend=None)
    compiled = _fit(elbo, model, guide, [(args, {})] * 10)
    _assert_same(eager, compiled)
    # Steps 2-10 come from the graph without SVI's param trace or the loss_and_grads path.
    assert runs[0] == 0 and elbo._captured is not None
    assert [entry.calls for entry in elbo._captured.entries.values()] == [9]
    grads = {name: leaf.grad for name, leaf in ember.get_param_store().named_parameters()}
    assert grads.keys() == eager_grads.keys()
    for name, grad in grads.items():
        assert grad is not None and torch.equal(grad, torch.zeros_like(grad)), name
    # With SVI's own path (loss_and_grads called directly, as a user may), the graph still runs.
    before = runs[0]
    svi = compiled[2]
    with ember.poutine.trace(param_only=True):
        svi.step(*args)
    assert runs[0] == before + 1


def test_a_param_replaced_in_the_store_is_stepped_from_then_on() -> None:
    _, _, args, _ = cases()["mean_field"]

    def train(svi: SVI) -> list[float]:
        losses = [svi.step(*args) for _ in range(5)]
        ember.get_param_store()["w_loc"] = torch.tensor([0.5, 0.5, 0.5])  # a new leaf, a new optimizer
        return losses + [svi.step(*args) for _ in range(5)]

    eager, compiled = _eager_then_compiled(train)
    _assert_same(eager, compiled)
    assert not torch.equal(compiled[1]["w_loc"], torch.tensor([0.5, 0.5, 0.5]))


def test_gradients_accumulated_before_a_step_are_kept_as_in_eager() -> None:
    _, _, args, _ = cases()["mean_field"]

    def train(svi: SVI) -> list[float]:
        losses = [svi.step(*args) for _ in range(3)]
        leaf = dict(ember.get_param_store().named_parameters())["w_loc"]
        leaf.grad = torch.full((3,), 100.0)  # a user's extra gradient, added to the step's
        return losses + [svi.step(*args) for _ in range(3)]

    _assert_same(*_eager_then_compiled(train))


def test_input_with_other_strides_gets_its_own_graph() -> None:
    model, guide, (x, y), _ = cases()["mean_field"]
    transposed = x.T.contiguous().T  # same shape and values, other strides
    steps: Steps = [((x, y), {})] * 3 + [((transposed, y), {})] * 3
    eager = _fit(Trace_ELBO(), model, guide, steps)
    elbo = CompiledTrace_ELBO(backend=None)
    with pytest.warns(UserWarning, match="changed since the last step"):
        compiled = _fit(elbo, model, guide, steps)
    _assert_same(eager, compiled)
    assert elbo._captured is not None and len(elbo._captured.entries) == 2


def test_an_optimizer_with_its_own_call_steps_through_it() -> None:
    _, _, args, _ = cases()["mean_field"]
    schedulers: list[Any] = []

    def make_optim() -> ember.optim.PyroOptim:
        schedulers.append(ember.optim.ExponentialLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": 0.05}, "gamma": 0.9}))
        return cast(ember.optim.PyroOptim, schedulers[-1])

    def train(svi: SVI) -> list[float]:
        losses = []
        for _ in range(6):
            losses.append(svi.step(*args))
            schedulers[-1].step()
        return losses

    _assert_same(*_eager_then_compiled(train, make_optim=make_optim))


def _gmm_data() -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    return torch.cat([torch.randn(15, generator=g) - 2.0, torch.randn(15, generator=g) + 2.0])


@config_enumerate
def _gmm(data: torch.Tensor) -> None:
    weights = ember.sample("weights", dist.Dirichlet(torch.ones(2)))
    locs = ember.param("locs", torch.tensor([-0.5, 0.5]))
    scale = ember.param("scale", torch.tensor(1.0), constraint=constraints.positive)
    with ember.plate("data", len(data)):
        z = ember.sample("z", dist.Categorical(weights))
        ember.sample("x", dist.Normal(locs[z], scale), obs=data)


def _gmm_guide(data: torch.Tensor) -> None:
    concentration = ember.param("concentration", torch.ones(2), constraint=constraints.positive)
    ember.sample("weights", dist.Dirichlet(concentration))


def _hmm(data: torch.Tensor) -> None:
    transition = ember.param("transition", torch.tensor([[0.8, 0.2], [0.3, 0.7]]), constraint=constraints.simplex)
    locs = ember.param("hmm_locs", torch.tensor([-1.0, 1.0]))
    state = torch.tensor(0)
    for t in ember.markov(range(len(data))):
        state = ember.sample(f"state_{t}", dist.Categorical(transition[state]), infer={"enumerate": "parallel"})
        ember.sample(f"obs_{t}", dist.Normal(locs[state], 0.5), obs=data[t])


def _no_guide(data: torch.Tensor) -> None:
    pass


@pytest.mark.parametrize(
    "model, guide, options",
    [
        (_gmm, _gmm_guide, {"max_plate_nesting": 1}),
        (_gmm, _gmm_guide, {"max_plate_nesting": 1, "num_particles": 3, "vectorize_particles": True}),
        (_hmm, _no_guide, {"max_plate_nesting": 0}),
    ],
    ids=["gmm", "gmm-vectorized-particles", "hmm-markov"],
)
def test_compiled_enum_steps_equal_eager_enum_steps(model: Callable[..., Any], guide: Callable[..., Any], options: dict[str, Any]) -> None:
    data = _gmm_data()[:12] if model is _hmm else _gmm_data()
    eager = _fit(TraceEnum_ELBO(**options), model, guide, [((data,), {})] * STEPS)
    elbo = CompiledTraceEnum_ELBO(backend=None, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = _fit(elbo, model, guide, [((data,), {})] * STEPS)
    _assert_same(eager, compiled)
    assert elbo._captured is not None
    assert [entry.calls for entry in elbo._captured.entries.values()] == [STEPS - 1]
    # The exact (enumerated) loss went down: the graph trained the params.
    assert compiled[0][-10:].mean() < compiled[0][:10].mean()


def test_inductor_is_called_directly_and_torch_compile_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch._inductor.compile_fx as inductor_compile_fx
    from torch.fx.experimental.proxy_tensor import make_fx

    from ember.infer._graph import compile_graph

    graph = make_fx(lambda a: (a.sin() * 2.0,))(torch.zeros(3))
    calls: list[dict[str, Any]] = []

    def direct(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Callable[..., Any]:
        from torch._inductor import config

        calls.append({"fallback_random": config.fallback_random})
        return gm

    monkeypatch.setattr(inductor_compile_fx, "compile_fx", direct)
    assert compile_graph(graph, [torch.zeros(3)], "inductor") is graph
    assert calls == [{"fallback_random": True}]  # inductor keeps torch's RNG: eager draws

    def refuse(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Callable[..., Any]:
        raise RuntimeError("moved")

    monkeypatch.setattr(inductor_compile_fx, "compile_fx", refuse)
    fallback = compile_graph(graph, [torch.zeros(3)], "inductor")
    assert fallback is not graph and isinstance(fallback, torch._dynamo.eval_frame.OptimizedModule)
    assert compile_graph(graph, [torch.zeros(3)], None) is graph


def _nan_factor_model(x: torch.Tensor, y: torch.Tensor) -> None:
    regression(x, y)
    # Each factor is a valid real; together they make the log density NaN.
    ember.factor("up", torch.tensor(float("inf")))
    ember.factor("down", torch.tensor(float("-inf")))


@pytest.mark.filterwarnings("ignore:Encountered [+-]inf. log_prob_sum")  # the model's own infinite factors
@pytest.mark.filterwarnings("ignore:Encountered NaN. loss$")  # the ELBO's own NaN check, besides the skip warning
def test_nonfinite_steps_are_skipped_with_the_warning_as_in_eager() -> None:
    _, _, args, _ = cases()["mean_field"]
    warned: list[int] = []

    def train(svi: SVI) -> list[float]:
        with pytest.warns(UserWarning, match="Encountered NaN: loss; SVI.step skipped the optimizer step") as record:
            losses = [svi.step(*args) for _ in range(4)]
        warned.append(len([w for w in record if "skipped" in str(w.message)]))
        return losses

    eager, compiled = _eager_then_compiled(train, model=_nan_factor_model)
    assert bool(compiled[0].isnan().all()) and warned == [4, 4]
    for name, value in eager[1].items():
        torch.testing.assert_close(compiled[1][name], value, rtol=0.0, atol=0.0)  # never stepped: the inits


def test_gradient_clipping_applies_on_the_compiled_path() -> None:
    _, _, args, _ = cases()["mean_field"]
    eager, compiled = _eager_then_compiled(
        lambda svi: [svi.step(*args) for _ in range(30)],
        make_optim=lambda: ember.optim.PyroOptim(torch.optim.Adam, {"lr": 0.05}, {"clip_norm": 0.1}),
    )
    _assert_same(eager, compiled)

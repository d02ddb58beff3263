from __future__ import annotations

import io
import pickle
import warnings
from typing import Any

import pyro.infer.autoguide.initialization as pyro_init
import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import LocScaleReparam, Reparam, ReparamMessage, ReparamResult
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from tests.parity._backends import EMBER, Backend, assert_same_error, assert_traces_match, run_both


def model(scale: float = 2.0) -> torch.Tensor:
    x: torch.Tensor = ember.sample("x", dist.Normal(1.0, scale))
    ember.sample("y", dist.Normal(x, 1.0), obs=torch.tensor(0.5))
    return x


CONFIG = {"x": LocScaleReparam(centered=0.0)}


def _check_decentered(tr: Any, scale: float = 2.0) -> None:
    assert list(tr.nodes) == ["_INPUT", "x_decentered", "x", "y", "_RETURN"]
    x, noise = tr.nodes["x"]["value"], tr.nodes["x_decentered"]["value"]
    assert torch.allclose(x, 1.0 + scale * noise)
    assert tr.nodes["x"]["is_observed"] and not tr.nodes["x_decentered"]["is_observed"]
    tr.compute_log_prob()
    assert tr.nodes["x"]["log_prob_sum"] == 0.0  # deterministic: a masked Delta
    expected = dist.Normal(0.0, 1.0).log_prob(noise) + dist.Normal(x, 1.0).log_prob(torch.tensor(0.5))
    assert torch.allclose(tr.log_prob_sum(), expected)


def test_function_form_decenters_the_site() -> None:
    tr = poutine.trace(poutine.reparam(model, CONFIG)).get_trace()
    _check_decentered(tr)


def test_decorator_form_keeps_arguments() -> None:
    @poutine.reparam(config=CONFIG)
    def decorated(scale: float) -> torch.Tensor:
        return model(scale)

    _check_decentered(poutine.trace(decorated).get_trace(3.0), scale=3.0)


def test_context_manager_form() -> None:
    with poutine.trace() as tracer, poutine.reparam(config=CONFIG):
        model()
    tr = tracer.get_trace()
    assert list(tr.nodes) == ["x_decentered", "x", "y"]


def test_messenger_class_form_and_handler_type() -> None:
    wrapped = poutine.ReparamMessenger(CONFIG)(model)
    assert isinstance(wrapped, poutine.ReparamHandler)
    assert getattr(wrapped, "__wrapped__") is model and getattr(wrapped, "__name__") == "model"
    assert poutine.unwrap(wrapped) is wrapped  # like trace, reparam's handler is not stripped


class Scaled:
    def __init__(self, scale: float) -> None:
        self.scale = scale

    @poutine.reparam(config=CONFIG)
    def run(self, shift: float) -> torch.Tensor:
        value: torch.Tensor = ember.sample("x", dist.Normal(shift, self.scale))
        return value


def test_method_decorator_binds_self() -> None:
    obj = Scaled(4.0)
    tr = poutine.trace(obj.run).get_trace(1.0)
    assert torch.allclose(tr.nodes["x"]["value"], 1.0 + 4.0 * tr.nodes["x_decentered"]["value"])
    assert Scaled.run.__get__(None, Scaled) is Scaled.__dict__["run"]


def test_wrapped_model_pickles() -> None:
    wrapped = poutine.reparam(model, CONFIG)
    buf = io.BytesIO()
    torch.save(wrapped, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    ember.set_rng_seed(1)
    expected = poutine.trace(wrapped).get_trace()
    ember.set_rng_seed(1)
    actual = poutine.trace(loaded).get_trace()
    assert list(actual.nodes) == list(expected.nodes)
    assert torch.equal(actual.nodes["x"]["value"], expected.nodes["x"]["value"])


def test_callable_config_and_none_leave_sites_alone() -> None:
    seen: list[str] = []

    def config(msg: Message) -> LocScaleReparam | None:
        seen.append(msg["name"] or "")
        return LocScaleReparam(centered=0.0) if msg["name"] == "x" else None

    with ember.plate("data", 2):
        tr = poutine.trace(poutine.reparam(model, config)).get_trace()
    assert seen == ["x", "x_decentered", "y"]  # the subsample site "data" is never offered
    assert list(tr.nodes) == ["_INPUT", "x_decentered", "x", "y", "_RETURN"]


def test_subsample_sites_are_skipped() -> None:
    def plated() -> None:
        with ember.plate("data", 10, subsample_size=3):
            ember.sample("x", dist.Normal(0.0, 1.0))

    tr = poutine.trace(poutine.reparam(plated, {"data": LocScaleReparam(0.0)})).get_trace()
    assert list(tr.nodes) == ["_INPUT", "data", "x", "_RETURN"]


class _RecordArgs(Reparam):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        self.seen.append(self.args_kwargs)
        return {"fn": msg["fn"], "value": msg["value"], "is_observed": bool(msg["is_observed"])}


def test_handler_passes_args_kwargs_to_reparameterizers() -> None:
    recorder = _RecordArgs()
    poutine.reparam(model, {"x": recorder})(scale=3.0)
    with poutine.reparam(config={"x": recorder}):
        model()
    assert recorder.seen == [((), {"scale": 3.0}), None]
    assert recorder.args_kwargs is None


class _FreshDraw(Reparam):
    """Ignores any initial value and draws again, changing the shape if asked."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.shape = shape

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        value = torch.zeros(self.shape)
        return {"fn": dist.Delta(value).mask(False), "value": value, "is_observed": True}


class _InitToValue(Messenger):
    """A minimal initialization messenger, answering the get_init_messengers effect."""

    def __init__(self, values: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.values = values

    def _pyro_sample(self, msg: Message) -> None:
        if msg["value"] is None and msg["name"] in self.values:
            msg["value"] = self.values[msg["name"] or ""]

    def _pyro_get_init_messengers(self, msg: Message) -> None:
        if msg["value"] is None:
            msg["value"] = []
        msg["value"].append(self)


def test_enclosing_init_messengers_run_before_the_reparameterizer() -> None:
    init = _InitToValue({"x": torch.tensor(5.0)})
    tr = poutine.trace(init(poutine.reparam(model, CONFIG))).get_trace()
    assert tr.nodes["x"]["value"] == 5.0
    assert tr.nodes["x_decentered"]["value"] == 2.0  # (5 - 1) / 2, drawn at the mapped value


def test_init_parity_with_pyro_init_messenger() -> None:
    def program(b: Backend) -> Any:
        values = {"x": torch.tensor(5.0)}
        if b is EMBER:
            init: Any = _InitToValue(values)
        else:
            init = pyro_init.InitMessenger(pyro_init.init_to_value(values=values))  # type: ignore[no-untyped-call]  # pyro is untyped
        reparams = ember_reparam if b is EMBER else pyro_reparam
        config = {"x": reparams.LocScaleReparam(centered=0.0)}
        return b.poutine.trace(init(b.poutine.reparam(_backend_model(b), config))).get_trace()

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)


def test_overwritten_initialization_warns_and_shape_is_checked() -> None:
    init = _InitToValue({"x": torch.tensor(5.0)})
    with pytest.warns(RuntimeWarning, match=r"At pyro.sample\('x',...\), _FreshDraw does not commute"):
        init(poutine.reparam(model, {"x": _FreshDraw()}))()
    quiet = torch.tensor(5.0)
    quiet._pyro_custom_init = False  # type: ignore[attr-defined]  # the flag default initializers set
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _InitToValue({"x": quiet})(poutine.reparam(model, {"x": _FreshDraw()}))()
    with pytest.raises(AssertionError, match=r"At sample site 'x', _FreshDraw changed the value's shape from \(\) to \(2,\)"):
        init(poutine.reparam(model, {"x": _FreshDraw((2,))}))()


def test_bad_config_is_an_assertion_error_as_in_pyro() -> None:
    def program(b: Backend) -> Any:
        return b.poutine.reparam(_backend_model(b), config=3)

    ours, _ = assert_same_error(program)
    assert "must be a dict or a callable, got int" in str(ours)
    with pytest.raises(TypeError, match="config"):
        poutine.reparam(model)  # type: ignore[call-overload]  # deliberately missing
    with pytest.raises(ValueError, match="not callable"):
        poutine.reparam(3, CONFIG)  # type: ignore[call-overload]  # deliberately wrong


def test_errors_inside_a_reparameterizer_leave_a_clean_stack() -> None:
    def program(b: Backend) -> Any:
        reparams = ember_reparam if b is EMBER else pyro_reparam
        m = _backend_model(b)
        return b.poutine.trace(b.poutine.reparam(m, {"x": reparams.TransformReparam()})).get_trace()

    ours, _ = assert_same_error(program)
    assert "sample site 'x'" in str(ours) and "TransformedDistribution" in str(ours)


# ---------------------------------------------------------------------------------------------
# Parity with pyro-ppl and composition with other handlers


def _backend_model(b: Backend) -> Any:
    def m() -> Any:
        loc = b.pyro.param("loc", torch.tensor(1.0))
        with b.pyro.plate("data", 3):
            x = b.pyro.sample("x", b.dist.Normal(loc, 2.0))
            b.pyro.sample("y", b.dist.Normal(x, 1.0), obs=torch.tensor([0.5, 1.0, 1.5]))
        return x

    return m


def _config(b: Backend, centered: float | None = 0.0) -> dict[str, Any]:
    reparams = ember_reparam if b is EMBER else pyro_reparam
    return {"x": reparams.LocScaleReparam(centered=centered)}


@pytest.mark.parametrize("centered", [None, 0.0, 0.4])
def test_parity_trace_of_reparam(centered: float | None) -> None:
    def program(b: Backend) -> Any:
        return b.poutine.trace(b.poutine.reparam(_backend_model(b), _config(b, centered))).get_trace()

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)


def test_parity_trace_inside_reparam() -> None:
    def program(b: Backend) -> Any:
        tracer = b.poutine.trace(_backend_model(b))
        b.poutine.reparam(tracer, _config(b))()
        return tracer.trace

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)
    assert list(ours.nodes) == ["_INPUT", "loc", "data", "x_decentered", "x", "y", "_RETURN"]


@pytest.mark.parametrize("order", ["replay_outside", "replay_inside"])
def test_parity_with_replay(order: str) -> None:
    def program(b: Backend) -> Any:
        m = _backend_model(b)
        if order == "replay_outside":  # the guide trace holds the decentered site
            source = b.poutine.trace(b.poutine.reparam(m, _config(b))).get_trace()
            wrapped = b.poutine.replay(b.poutine.reparam(m, _config(b)), trace=source)
        else:  # the guide trace holds the original site, whose value is then decentered
            source = b.poutine.trace(m).get_trace()
            wrapped = b.poutine.reparam(b.poutine.replay(m, trace=source), _config(b))
        return source, b.poutine.trace(wrapped).get_trace()

    (ours_source, ours), (theirs_source, theirs) = run_both(program)
    assert_traces_match(ours, theirs)
    assert torch.equal(ours.nodes["x"]["value"], ours_source.nodes["x"]["value"])


@pytest.mark.parametrize("order", ["condition_outside", "condition_inside"])
def test_parity_with_condition(order: str) -> None:
    data = {"x": torch.tensor([3.0, 5.0, 7.0])}

    def program(b: Backend) -> Any:
        m = _backend_model(b)
        if order == "condition_outside":
            wrapped = b.poutine.condition(b.poutine.reparam(m, _config(b)), data=data)
        else:
            wrapped = b.poutine.reparam(b.poutine.condition(m, data=data), _config(b))
        return b.poutine.trace(wrapped).get_trace()

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)
    assert torch.equal(ours.nodes["x"]["value"], data["x"])
    if order == "condition_inside":  # the observation is mapped to the decentered space
        assert ours.nodes["x_decentered"]["is_observed"]
        assert torch.allclose(ours.nodes["x_decentered"]["value"], (data["x"] - 1.0) / 2.0)


@pytest.mark.parametrize("order", ["block_outside", "block_inside"])
def test_parity_with_block(order: str) -> None:
    def program(b: Backend) -> Any:
        m = _backend_model(b)
        if order == "block_outside":
            wrapped = b.poutine.block(b.poutine.reparam(m, _config(b)), hide=["x_decentered"])
        else:
            wrapped = b.poutine.reparam(b.poutine.block(m, hide=["x"]), _config(b))
        return b.poutine.trace(wrapped).get_trace()

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)
    hidden = "x_decentered" if order == "block_outside" else "x"
    assert hidden not in ours.nodes


@pytest.mark.parametrize("order", ["plate_outside", "plate_inside"])
def test_parity_with_plate(order: str) -> None:
    def program(b: Backend) -> Any:
        def site() -> Any:
            return b.pyro.sample("x", b.dist.Normal(0.0, 3.0))

        if order == "plate_outside":
            with b.poutine.trace() as tracer, b.pyro.plate("p", 4), b.poutine.reparam(config=_config(b)):
                site()
        else:
            with b.poutine.trace() as tracer, b.poutine.reparam(config=_config(b)), b.pyro.plate("p", 4):
                site()
        return tracer.get_trace()

    ours, theirs = run_both(program)
    assert_traces_match(ours, theirs)
    assert ours.nodes["x_decentered"]["value"].shape == (4,)

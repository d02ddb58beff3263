from __future__ import annotations

import functools
import io
import pickle
from typing import Any, Callable

import pyro.infer
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.enumerate_config import config_enumerate
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


PYRO_CONFIG_ENUMERATE: Any = pyro.infer.config_enumerate  # untyped in pyro-ppl


def config_enumerate_of(b: Backend) -> Any:
    return config_enumerate if b is EMBER else PYRO_CONFIG_ENUMERATE


def sites(b: Backend) -> None:
    """One site of each kind config_enumerate distinguishes."""
    b.pyro.param("p", torch.tensor(0.5))
    b.pyro.sample("coin", b.dist.Bernoulli(0.5))
    b.pyro.sample("die", b.dist.Categorical(torch.ones(6)), infer={"enumerate": "sequential"})
    b.pyro.sample("own", b.dist.Bernoulli(0.5), infer={"expand": True, "custom": 1})
    b.pyro.sample("height", b.dist.Normal(0.0, 1.0))
    b.pyro.sample("seen", b.dist.Bernoulli(0.5), obs=torch.tensor(1.0))
    with b.pyro.plate("data", 3, subsample_size=2):
        b.pyro.sample("local", b.dist.Bernoulli(0.5))


def ember_sites() -> None:
    sites(EMBER)


def _infers(tr: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(site["infer"]) for name, site in tr.nodes.items() if site["type"] in ("sample", "param")}


def _configured_trace(b: Backend, **options: Any) -> Any:
    return b.poutine.trace(config_enumerate_of(b)(functools.partial(sites, b), **options)).get_trace()


# --- which sites get which keys --------------------------------------------------------------


def test_exhaustive_configuration_marks_only_unobserved_enumerable_sites() -> None:
    ours, theirs = run_both(lambda b: _configured_trace(b))
    assert _infers(ours) == {
        "p": {},
        "coin": {"enumerate": "parallel", "expand": False},
        "die": {"enumerate": "sequential", "expand": False},
        "own": {"enumerate": "parallel", "expand": True, "custom": 1},
        "height": {},
        "seen": {},
        "data": {},
        "local": {"enumerate": "parallel", "expand": False},
    }
    assert_traces_match(ours, theirs)


def test_local_sampling_configures_every_unobserved_site() -> None:
    ours, theirs = run_both(lambda b: _configured_trace(b, num_samples=5, tmc="mixture"))
    infers = _infers(ours)
    assert infers["height"] == {"enumerate": "parallel", "num_samples": 5, "expand": False, "tmc": "mixture"}
    assert infers["own"] == {"enumerate": "parallel", "num_samples": 5, "expand": True, "tmc": "mixture", "custom": 1}
    assert infers["seen"] == infers["data"] == infers["p"] == {}
    assert_traces_match(ours, theirs)


def test_full_tmc_means_expanded_samples() -> None:
    ours, theirs = run_both(lambda b: _configured_trace(b, num_samples=2, tmc="full"))
    assert _infers(ours)["coin"] == {"enumerate": "parallel", "num_samples": 2, "expand": True, "tmc": "full"}
    assert_traces_match(ours, theirs)


@pytest.mark.parametrize("default", ["sequential", "flat", None])
def test_other_defaults(default: str | None) -> None:
    ours, theirs = run_both(lambda b: _configured_trace(b, default=default, expand=True))
    assert _infers(ours)["coin"] == {"enumerate": default, "expand": True}
    assert_traces_match(ours, theirs)


def test_configured_model_enumerates_under_enum() -> None:
    def program(b: Backend) -> Any:
        def model() -> Any:
            x = b.pyro.sample("x", b.dist.Bernoulli(0.3))
            return b.pyro.sample("y", b.dist.Normal(x, 1.0), obs=torch.tensor(0.5))

        configured = config_enumerate_of(b)(model)
        return b.poutine.trace(b.poutine.enum(configured, first_available_dim=-1)).get_trace()

    ours, theirs = run_both(program)
    assert ours.nodes["x"]["value"].tolist() == [0.0, 1.0]
    assert_traces_match(ours, theirs)


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"default": "exhaustive"}, "Invalid default value. Expected 'sequential', 'parallel', or None, but got 'exhaustive'"),
        ({"expand": "yes"}, "Invalid expand value. Expected True or False, but got 'yes'"),
        ({"num_samples": 0}, "Invalid num_samples, expected None or positive integer, but got 0"),
        ({"num_samples": "10"}, "Invalid num_samples, expected None or positive integer, but got '10'"),
        (
            {"num_samples": 3, "default": "sequential"},
            'Local sampling does not support "sequential" sampling; use "parallel" sampling instead.',
        ),
    ],
)
def test_bad_options_raise_pyros_value_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as ours:
        config_enumerate(ember_sites, **options)
    with pytest.raises(ValueError) as theirs:
        PYRO_CONFIG_ENUMERATE(ember_sites, **options)
    assert str(ours.value) == str(theirs.value) == message
    with pytest.raises(ValueError, match="Invalid"):
        config_enumerate(default="exhaustive")  # the decorator form validates eagerly too


# --- forms and pickling ---------------------------------------------------------------------------


def test_function_form_keeps_the_model_and_its_metadata() -> None:
    configured = config_enumerate(ember_sites)
    assert poutine.unwrap(configured) is ember_sites and configured.__name__ == "ember_sites"
    assert _infers(poutine.trace(configured).get_trace())["coin"] == {"enumerate": "parallel", "expand": False}


def test_decorator_forms() -> None:
    @config_enumerate
    def bare() -> None:
        ember.sample("x", dist.Bernoulli(0.5))

    @config_enumerate(default="sequential", expand=True)
    def configured() -> None:
        ember.sample("x", dist.Bernoulli(0.5))

    assert poutine.trace(bare).get_trace().nodes["x"]["infer"] == {"enumerate": "parallel", "expand": False}
    assert poutine.trace(configured).get_trace().nodes["x"]["infer"] == {"enumerate": "sequential", "expand": True}


def test_a_saved_decorator_can_configure_nested_functions() -> None:
    # Each application makes its own messenger, so configured functions may call each other.
    decorate = config_enumerate(expand=True)

    @decorate
    def inner() -> None:
        ember.sample("x", dist.Bernoulli(0.5))

    @decorate
    def outer() -> None:
        inner()
        ember.sample("y", dist.Bernoulli(0.5))

    tr = poutine.trace(outer).get_trace()
    assert tr.nodes["x"]["infer"] == tr.nodes["y"]["infer"] == {"enumerate": "parallel", "expand": True}


class Guide:
    def __init__(self, probs: float) -> None:
        self.probs = torch.tensor(probs)

    @config_enumerate
    def __call__(self) -> torch.Tensor:
        value: torch.Tensor = ember.sample("x", dist.Bernoulli(self.probs))
        return value


def test_method_decorator_form_binds_self() -> None:
    guide = Guide(0.2)
    with poutine.trace() as tracer, poutine.enum(first_available_dim=-1):
        value = guide()
    assert value.tolist() == [0.0, 1.0]
    fn = tracer.trace.nodes["x"]["fn"]
    assert isinstance(fn, dist.Bernoulli) and fn.probs == 0.2


def test_configured_model_pickles() -> None:
    buffer = io.BytesIO()
    torch.save(config_enumerate(ember_sites, num_samples=4), buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buffer.seek(0)
    loaded: Callable[[], None] = torch.load(buffer, weights_only=False)
    assert _infers(poutine.trace(loaded).get_trace())["height"]["num_samples"] == 4


# --- composition ------------------------------------------------------------------------------------


def _compose(b: Backend, wrap: Callable[[Backend, Any], Any], configure_outside: bool) -> Any:
    model = functools.partial(sites, b)
    configure = config_enumerate_of(b)
    wrapped = configure(wrap(b, model)) if configure_outside else wrap(b, configure(model))
    return b.poutine.trace(wrapped).get_trace()


def _condition(b: Backend, fn: Any) -> Any:
    return b.poutine.condition(fn, data={"coin": torch.tensor(1.0)})


def _block(b: Backend, fn: Any) -> Any:
    return b.poutine.block(fn, hide=["height"])


def _replay(b: Backend, fn: Any) -> Any:
    return b.poutine.replay(fn, trace=b.poutine.trace(functools.partial(sites, b)).get_trace())


def _plate(b: Backend, fn: Any) -> Any:
    def plated() -> Any:
        with b.pyro.plate("outer", 2, dim=-2):
            return fn()

    return plated


@pytest.mark.parametrize("wrap", [_condition, _block, _replay, _plate, lambda b, fn: b.poutine.trace(fn)])
@pytest.mark.parametrize("configure_outside", [True, False])
def test_composes_with_handlers_in_both_orders(wrap: Callable[[Backend, Any], Any], configure_outside: bool) -> None:
    ours, theirs = run_both(lambda b: _compose(b, wrap, configure_outside))
    assert_traces_match(ours, theirs)
    if wrap is _condition:
        # An observed site is skipped only if conditioning happened first (inside).
        expected = {} if configure_outside else {"enumerate": "parallel", "expand": False}
        assert _infers(ours)["coin"] == expected

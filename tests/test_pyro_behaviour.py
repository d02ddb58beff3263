"""Behaviour Pyro programs rely on: a non-distribution ``fn`` handled by a messenger,
losses summed in double precision, no TracerWarnings from Ember's own modules, and warnings
attributed to the user's line."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.infer
import pyro.optim
import pyro.poutine
import pytest
import torch

import ember
import ember.distributions
import ember.infer
import ember.optim
from ember import poutine
from ember.infer.autoguide import AutoNormal


class _LazyValue:
    """A value computed only when asked for (Pyro's "effect handlers" tutorial)."""

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def evaluate(self) -> Any:
        args = [a.evaluate() if isinstance(a, _LazyValue) else a for a in self.args]
        return self.fn(*args, **self.kwargs)


def _lazy_messenger(base: type) -> type:
    class Lazy(base):  # type: ignore[misc]  # the base is Ember's or Pyro's Messenger, known at run time only
        def _process_message(self, msg: Any) -> None:
            if msg["type"] in ("apply", "sample") and not msg["done"]:
                msg["done"] = True
                fn = msg["fn"]
                if isinstance(fn, tuple):  # ("normal", loc): evaluate as a point mass at loc
                    msg["value"] = _LazyValue(lambda: torch.tensor(fn[1]), (), {})
                else:
                    msg["value"] = _LazyValue(fn, msg["args"], msg["kwargs"])

    return Lazy


def _lazy_program(backend: Any, effectful: Callable[..., Any], messenger: type) -> tuple[list[str], float]:
    add = effectful(type="apply")(lambda x, y: x + y)
    with poutine_of(backend).trace() as tracer, messenger():
        x = backend.sample("x", ("normal", 1.5))
        total = add(x, 2.0)
    return [name for name in tracer.trace.nodes], float(total.evaluate())


def poutine_of(backend: Any) -> Any:
    return poutine if backend is ember else pyro.poutine


def test_non_callable_fn_goes_through_the_stack_like_pyro() -> None:
    from pyro.poutine.messenger import Messenger as PyroMessenger
    from pyro.poutine.runtime import effectful as pyro_effectful

    from ember.poutine.messenger import Messenger
    from ember.poutine.runtime import effectful

    ours = _lazy_program(ember, effectful, _lazy_messenger(Messenger))
    theirs = _lazy_program(pyro, pyro_effectful, _lazy_messenger(PyroMessenger))
    assert ours == theirs == (["x"], 3.5)
    with pytest.raises(TypeError, match="sample site 'y' expects a distribution"):
        with poutine.trace():
            ember.sample("y", ("normal", 1.5))  # type: ignore[arg-type]  # no handler computes it
    assert poutine.runtime.get_stack() == ()


def _regression(backend: Any) -> tuple[Callable[..., None], Any]:
    dist = backend.distributions

    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        w = backend.sample("w", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        sigma = backend.sample("sigma", dist.LogNormal(0.0, 1.0))
        with backend.plate("data", x.shape[0]):
            backend.sample("y", dist.Normal(x @ w, sigma), obs=y)

    return model, backend.infer.autoguide.AutoNormal(model) if backend is pyro else AutoNormal(model)


@pytest.mark.parametrize("elbo", ["Trace_ELBO", "TraceMeanField_ELBO", "TraceGraph_ELBO"])
def test_losses_are_double_precision_floats_equal_to_pyros(elbo: str) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(500, 3), torch.randn(500)
    results = []
    for backend in (ember, pyro):
        backend.clear_param_store()
        model, guide = _regression(backend)
        torch.manual_seed(1)
        svi = backend.infer.SVI(model, guide, backend.optim.Adam({"lr": 0.05}), getattr(backend.infer, elbo)(num_particles=2))
        losses = [svi.step(x, y) for _ in range(5)]
        losses.append(getattr(backend.infer, elbo)().loss(model, guide, x, y))
        results.append(losses)
    ours, theirs = results
    assert all(isinstance(loss, float) for loss in ours)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0.0)


def test_jit_elbos_emit_no_tracer_warning_from_ember_modules() -> None:
    ember_dir = os.path.dirname(ember.__file__)

    def model(data: torch.Tensor) -> None:
        loc = ember.sample("loc", ember.distributions.Normal(0.0, 1.0))
        with ember.plate("data", data.shape[0], subsample_size=5) as idx:
            ember.sample("obs", ember.distributions.Normal(loc, 1.0), obs=data[idx])

    for elbo in (ember.infer.JitTrace_ELBO, ember.infer.JitTraceMeanField_ELBO, ember.infer.JitTraceGraph_ELBO):
        ember.clear_param_store()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            svi = ember.infer.SVI(model, AutoNormal(model), ember.optim.Adam({"lr": 0.01}), elbo())
            for _ in range(2):
                svi.step(torch.randn(20))
        ours = [w for w in record if w.filename.startswith(ember_dir)]
        assert ours == [], [(w.filename, w.lineno, str(w.message)) for w in ours]


def test_ember_warnings_point_at_the_users_line() -> None:
    def model() -> None:
        ember.factor("f", torch.tensor(float("inf")))

    with pytest.warns(UserWarning, match="Encountered \\+inf: log_prob_sum at site 'f'") as record:
        poutine.trace(model).get_trace().log_prob_sum()
    assert [w.filename for w in record] == [__file__]
    with pytest.warns(RuntimeWarning, match="trying to observe a value outside of inference at x") as record:
        ember.sample("x", ember.distributions.Normal(0.0, 1.0), obs=torch.tensor(0.0))
    assert [w.filename for w in record] == [__file__]

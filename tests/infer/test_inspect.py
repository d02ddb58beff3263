"""render_model and the model relations under it, against pyro-ppl's on the same models."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.infer.inspect
import pyro.nn
import pytest
import torch

import ember
import ember.distributions
import ember.nn
from ember import poutine
from ember.infer.inspect import get_model_relations, render_model

Model = Callable[..., Any]


def _models(backend: Any) -> dict[str, tuple[Model, tuple[Any, ...]]]:
    dist = backend.distributions

    def nested_plates(data: torch.Tensor) -> None:
        m = backend.param("m", torch.tensor(0.5), constraint=dist.constraints.positive)
        a = backend.sample("a", dist.Normal(m, 1.0))
        with backend.plate("outer", 2):
            b = backend.sample("b", dist.Normal(a, 1.0))
            with backend.plate("inner", 3):
                backend.sample("c", dist.Normal(b, 1.0))
        with backend.plate("data", 3):
            backend.sample("obs", dist.Normal(a, 1.0), obs=data)

    def observed_and_params(data: torch.Tensor) -> None:
        loc = backend.param("loc", torch.zeros(2))
        scale = backend.param("scale", torch.ones(2), constraint=dist.constraints.positive)
        probs = backend.param("probs", torch.ones(3) / 3, constraint=dist.constraints.simplex)
        z = backend.sample("z", dist.Categorical(probs))
        backend.sample("x", dist.Normal(loc + z, scale).to_event(1), obs=data)

    def deterministic(data: torch.Tensor) -> None:
        a = backend.sample("a", dist.Normal(0.0, 1.0))
        b = backend.deterministic("b", a * 2)
        with backend.plate("data", 3):
            backend.sample("obs", dist.Normal(b, 1.0), obs=data)

    def markov_chain(data: torch.Tensor) -> None:
        x = torch.tensor(0.0)
        for t in backend.markov(range(4)):
            x = backend.sample(f"x_{t}", dist.Normal(x, 1.0))
            backend.sample(f"y_{t}", dist.Normal(x, 1.0), obs=data[t])

    class Encoder(backend.nn.PyroModule):  # type: ignore[misc]  # Ember's or Pyro's PyroModule
        def __init__(self) -> None:
            super().__init__()
            self.linear = backend.nn.PyroModule[torch.nn.Linear](1, 2)

    encoder = Encoder()

    def amortized_guide(data: torch.Tensor) -> None:
        backend.module("encoder", encoder)
        with backend.plate("data", 3):
            out = encoder.linear(data.unsqueeze(-1))
            backend.sample("z", dist.Normal(out[..., 0], out[..., 1].exp()))

    def masked_and_wrapped(data: torch.Tensor) -> None:
        a = backend.sample("a", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        b = backend.sample("b", dist.Normal(0.0, 1.0).mask(False))
        c = backend.sample("c", dist.Normal(a.sum() + b, 1.0).expand([2]).to_event(1))
        backend.factor("f", c.sum())

    def observed_upstream(data: torch.Tensor) -> None:
        # An observed value read downstream is upstream of its reader; a point mass (not a
        # deterministic site) passes its inputs on; a masked-off observation is no source.
        x = backend.sample("x", dist.Normal(0.0, 1.0), obs=data[0])
        y = backend.sample("y", dist.Normal(x, 1.0))
        z = backend.sample("z", dist.Delta(y * 2))
        w = backend.sample("w", dist.Normal(z, 1.0))
        with backend.poutine.mask(mask=False):
            m = backend.sample("m", dist.Normal(w, 1.0), obs=data[1])
        backend.sample("n", dist.Normal(m, 1.0))

    data = torch.tensor([0.1, -0.3, 0.7, 0.2])
    return {
        "observed_upstream": (observed_upstream, (data,)),
        "nested_plates": (nested_plates, (data[:3],)),
        "observed_and_params": (observed_and_params, (data[:2],)),
        "deterministic": (deterministic, (data[:3],)),
        "markov_chain": (markov_chain, (data,)),
        "amortized_guide": (amortized_guide, (data[:3],)),
        "masked_and_wrapped": (masked_and_wrapped, (data,)),
    }


_OPTIONS: list[dict[str, Any]] = [
    {},
    {"render_distributions": True},
    {"render_params": True},
    {"render_distributions": True, "render_params": True, "render_deterministic": True},
]


@pytest.mark.parametrize("name", list(_models(ember)))
def test_dot_source_and_relations_equal_pyros(name: str) -> None:
    ember.clear_param_store()
    pyro.clear_param_store()
    ours, args = _models(ember)[name]
    theirs, _ = _models(pyro)[name]
    for deterministic in (False, True):
        expected = pyro.infer.inspect.get_model_relations(theirs, args, include_deterministic=deterministic)
        actual = get_model_relations(ours, args, include_deterministic=deterministic)
        # Pyro lists upstream sites in set order; compare them as sets.
        for key in ("sample_sample", "sample_param"):
            assert {k: set(v) for k, v in actual[key].items()} == {k: set(v) for k, v in expected[key].items()}, key
        for key in ("sample_dist", "param_constraint", "plate_sample", "observed"):
            assert actual[key] == expected[key], key  # type: ignore[literal-required]  # the remaining keys
    for options in _OPTIONS:
        a = render_model(ours, args, **options).source
        b = pyro.render_model(theirs, args, **options).source
        assert sorted(a.splitlines()) == sorted(b.splitlines()), options


def test_model_args_as_a_list_draws_the_union_of_the_runs() -> None:
    def model(flag: bool) -> None:
        a = ember.sample("a", ember.distributions.Normal(0.0, 1.0))
        if flag:
            ember.sample("b", ember.distributions.Normal(a, 1.0))

    source = render_model(model, [(False,), (True,)]).source
    assert "a -> b" in source and "\tb [label=b" in source


@pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' program is not installed")
def test_render_model_writes_a_valid_png(tmp_path: Path) -> None:
    model, args = _models(ember)["nested_plates"]
    out = tmp_path / "model.png"
    render_model(model, args, filename=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "model.svg"
    render_model(model, args, filename=svg)
    assert b"<svg" in svg.read_bytes()


def test_unknown_extension_is_a_value_error_listing_formats() -> None:
    model, args = _models(ember)["deterministic"]
    with pytest.raises(ValueError, match=r"unknown format 'docx'; use one of \[.*'png'.*'svg'"):
        render_model(model, args, filename="model.docx")


def test_a_model_that_raises_names_the_last_site_and_leaves_no_handler() -> None:
    def broken() -> None:
        ember.sample("ok", ember.distributions.Normal(0.0, 1.0))
        raise RuntimeError("user bug")

    with pytest.raises(RuntimeError, match="user bug") as info:
        render_model(broken)
    assert any("after site 'ok'" in note for note in getattr(info.value, "__notes__", []))
    assert poutine.runtime.get_stack() == ()


def test_missing_graphviz_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"pip install 'ember\[render\]'"):
        render_model(lambda: None)

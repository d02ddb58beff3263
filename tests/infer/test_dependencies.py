"""get_dependencies, is_sample_site, site_is_deterministic and TrackProvenance, against pyro-ppl's."""

from __future__ import annotations

import importlib
from typing import Any, Callable

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.inspect import (
    ProvenanceTensor,
    TrackProvenance,
    get_dependencies,
    is_sample_site,
    site_is_deterministic,
)
from ember.ops.provenance import get_provenance
from tests.parity._backends import BACKENDS, EMBER, PYRO, Backend, assert_same_error

pyro_inspect: Any = importlib.import_module("pyro.infer.inspect")

Program = Callable[[Backend], Callable[..., Any]]
DATA = torch.tensor([0.3, -1.2, 0.8, 2.0])


def chain(b: Backend) -> Callable[..., Any]:
    def model() -> None:
        x = b.pyro.sample("x0", b.dist.Normal(0.0, 1.0))
        for t in range(1, 4):
            x = b.pyro.sample(f"x{t}", b.dist.Normal(x, 1.0))
            b.pyro.sample(f"y{t}", b.dist.Normal(x, 0.5), obs=DATA[t])

    return model


def collider(b: Backend) -> Callable[..., Any]:
    def model() -> None:
        a = b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
        s = b.pyro.sample("s", b.dist.LogNormal(0.0, 1.0))
        c = b.pyro.sample("c", b.dist.Normal(a, s))
        b.pyro.sample("d", b.dist.Normal(c, 1.0), obs=torch.tensor(0.0))

    return model


def nested_plates(b: Backend) -> Callable[..., Any]:
    def model(data: torch.Tensor) -> None:
        mu = b.pyro.sample("mu", b.dist.Normal(0.0, 1.0))
        with b.pyro.plate("groups", 2, dim=-2):
            g = b.pyro.sample("g", b.dist.Normal(mu, 1.0))
            with b.pyro.plate("items", 4, dim=-1):
                h = b.pyro.sample("h", b.dist.Normal(g, 1.0))
                b.pyro.sample("obs", b.dist.Normal(h, 1.0), obs=data)
        # A total over both plates couples every element with every other.
        b.pyro.sample("total", b.dist.Normal(h.sum(), 1.0), obs=torch.tensor(1.0))

    return model


def crossed_plates(b: Backend) -> Callable[..., Any]:
    def model(data: torch.Tensor) -> None:
        rows = b.pyro.plate("rows", 3, dim=-2)
        cols = b.pyro.plate("cols", 4, dim=-1)
        with rows:
            r = b.pyro.sample("r", b.dist.Normal(0.0, 1.0))
        with cols:
            c = b.pyro.sample("c", b.dist.Normal(0.0, 1.0))
        with rows, cols:
            b.pyro.sample("cell", b.dist.Normal(r + c, 1.0), obs=data)
        with cols:
            b.pyro.sample("col_total", b.dist.Normal(r.sum(-2, keepdim=True) * c, 1.0), obs=data[0])

    return model


def deterministic(b: Backend) -> Callable[..., Any]:
    def model() -> None:
        a = b.pyro.sample("a", b.dist.Normal(0.0, 1.0))
        twice = b.pyro.deterministic("twice", 2 * a)
        c = b.pyro.sample("c", b.dist.Normal(twice, 1.0))
        point = b.pyro.sample("point", b.dist.Delta(c + 1))
        with b.pyro.plate("data", 3):
            b.pyro.sample("obs", b.dist.Normal(point, 1.0), obs=DATA[:3])

    return model


def subsample(b: Backend) -> Callable[..., Any]:
    def model(data: torch.Tensor) -> None:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
        with b.pyro.plate("data", len(data), subsample_size=2) as idx:
            z = b.pyro.sample("z", b.dist.Normal(loc, 1.0))
            b.pyro.sample("x", b.dist.Normal(z, 1.0), obs=data[idx])

    return model


def discrete(b: Backend) -> Callable[..., Any]:
    def model(data: torch.Tensor) -> None:
        weights = b.pyro.sample("weights", b.dist.Dirichlet(torch.ones(3)))
        locs = b.pyro.sample("locs", b.dist.Normal(torch.zeros(3), 2.0).to_event(1))
        with b.pyro.plate("data", len(data)):
            k = b.pyro.sample("k", b.dist.Categorical(weights))
            b.pyro.sample("x", b.dist.Normal(locs[k], 1.0), obs=data)
        flip = b.pyro.sample("flip", b.dist.Bernoulli(0.3), infer={"enumerate": "sequential"})
        b.pyro.sample("y", b.dist.Normal(flip, 1.0), obs=torch.tensor(0.5))

    enumerated: Callable[..., Any] = b.infer.config_enumerate(model)
    return enumerated


def observed_in_plates(b: Backend) -> Callable[..., Any]:
    def model(data: torch.Tensor) -> None:
        scale = b.pyro.sample("scale", b.dist.LogNormal(0.0, 1.0))
        mask = torch.tensor([True, False, True, True])
        with b.pyro.plate("data", 4):
            # Observed where the mask is set, sampled elsewhere: two sites plus a deterministic.
            x = b.pyro.sample("x", b.dist.Normal(0.0, scale), obs=data, obs_mask=mask)
            b.pyro.sample("y", b.dist.Normal(x, 1.0), obs=data)
        with b.poutine.mask(mask=False):
            b.pyro.sample("ignored", b.dist.Normal(scale, 1.0), obs=torch.tensor(0.0))
        # An observed value used downstream: the observation is no upstream latent.
        b.pyro.sample("after", b.dist.Normal(data.sum() + x.sum(), 1.0))
        empty = b.pyro.sample("empty", b.dist.Normal(torch.zeros(0), 1.0).to_event(1))
        # A latent with no elements is never upstream, even when read.
        b.pyro.sample("reads_empty", b.dist.Normal(empty.sum() + scale, 1.0), obs=torch.tensor(0.0))

    return model


def pyro_module(b: Backend) -> Callable[..., Any]:
    class Regression(b.pyro.nn.PyroModule):  # type: ignore[misc, name-defined]  # Ember's or Pyro's PyroModule
        def __init__(self) -> None:
            super().__init__()
            self.linear = b.pyro.nn.PyroModule[torch.nn.Linear](2, 1)
            self.linear.weight = b.pyro.nn.PyroSample(b.dist.Normal(0.0, 1.0).expand([1, 2]).to_event(2))
            self.linear.bias = b.pyro.nn.PyroSample(b.dist.Normal(0.0, 10.0).expand([1]).to_event(1))

        def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            sigma = b.pyro.sample("sigma", b.dist.LogNormal(0.0, 1.0))
            mean = self.linear(x).squeeze(-1)
            with b.pyro.plate("data", x.shape[0]):
                return b.pyro.sample("obs", b.dist.Normal(mean, sigma), obs=y)  # type: ignore[no-any-return]

    return Regression()


_X = torch.tensor([[0.1, 0.2], [1.0, -1.0], [0.5, 0.3], [2.0, 0.0]])
MODELS: dict[str, tuple[Program, tuple[Any, ...], dict[str, Any]]] = {
    "chain": (chain, (), {}),
    "collider": (collider, (), {}),
    "nested_plates": (nested_plates, (torch.randn(2, 4),), {}),
    "crossed_plates": (crossed_plates, (torch.randn(3, 4),), {}),
    "deterministic": (deterministic, (), {}),
    "subsample": (subsample, (DATA,), {}),
    "discrete": (discrete, (DATA,), {}),
    "observed_in_plates": (observed_in_plates, (DATA,), {}),
    "pyro_module": (pyro_module, (_X,), {"y": DATA}),
}


@pytest.mark.parametrize("include_deterministic", [False, True])
@pytest.mark.parametrize("name", list(MODELS))
def test_dependencies_equal_pyros(name: str, include_deterministic: bool) -> None:
    program, args, kwargs = MODELS[name]
    ember.clear_param_store()
    model = program(EMBER)
    rng = torch.get_rng_state()
    ours = get_dependencies(model, args, kwargs, include_deterministic=include_deterministic)
    assert torch.equal(torch.get_rng_state(), rng)  # the run leaves the global RNG as it was
    theirs = pyro_inspect.get_dependencies(program(PYRO), args, kwargs, include_deterministic=include_deterministic)
    assert ours == theirs
    for key in ("prior_dependencies", "posterior_dependencies"):  # model order, as Pyro's
        assert list(ours[key]) == list(theirs[key])
        assert {k: list(v) for k, v in ours[key].items()} == {k: list(v) for k, v in theirs[key].items()}


def test_plates_mark_all_to_all_dependence() -> None:
    deps = get_dependencies(nested_plates(EMBER), (torch.zeros(2, 4),))
    prior, posterior = deps["prior_dependencies"], deps["posterior_dependencies"]
    assert prior["h"] == {"h": set(), "g": set()} and prior["total"] == {"total": set(), "h": set()}
    assert set(prior) == {"mu", "g", "h", "obs", "total"} and "obs" not in posterior
    # Through the total, every element of h depends on every other, across both plates.
    assert posterior["h"] == {"h": {"groups", "items"}, "obs": set(), "total": set()}
    crossed = get_dependencies(crossed_plates(EMBER), (torch.zeros(3, 4),))["posterior_dependencies"]
    # col_total sums r over "rows" and lives outside that plate: the elements of r become
    # coupled with each other across "rows"; r and c share no plate, so their edge has none.
    assert crossed["r"] == {"r": {"rows"}, "cell": set(), "col_total": set(), "c": set()}
    assert crossed["c"] == {"c": set(), "cell": set(), "col_total": set()}


def test_elided_sites_pass_dependencies_through() -> None:
    prior = get_dependencies(deterministic(EMBER))["prior_dependencies"]
    # "twice" and "point" are point masses: c reads a through twice, obs reads c through point.
    assert prior == {"a": {"a": set()}, "c": {"c": set(), "a": set()}, "obs": {"obs": set(), "c": set()}}
    prior = get_dependencies(observed_in_plates(EMBER), (DATA,))["prior_dependencies"]
    assert "ignored" not in prior and "empty" in prior  # a masked observation is left out
    assert prior["reads_empty"] == {"reads_empty": set(), "scale": set()}
    assert prior["x_observed"] == {"x_observed": set(), "scale": set()}
    # x mixes the observed data with x_unobserved; only the latent is upstream.
    assert prior["y"] == {"y": set(), "x_unobserved": set()}
    assert prior["after"] == {"after": set(), "x_unobserved": set()}
    subsampled = get_dependencies(subsample(EMBER), (DATA,))["prior_dependencies"]
    assert set(subsampled) == {"loc", "z", "x"}  # the subsample site "data" is no site


def test_a_model_that_raises_propagates_with_a_note_and_leaves_no_state() -> None:
    def program(b: Backend) -> None:
        def model() -> None:
            b.pyro.sample("ok", b.dist.Normal(0.0, 1.0))
            raise ValueError("user bug")

        inspect_module = importlib.import_module(f"{b.pyro.__name__}.infer.inspect")
        inspect_module.get_dependencies(model)

    ours, _ = assert_same_error(program)
    assert "after site 'ok'" in " ".join(getattr(ours, "__notes__", []))
    with pytest.raises(TypeError) as info:
        get_dependencies(lambda x: None)
    assert "before its first site" in " ".join(getattr(info.value, "__notes__", []))
    assert poutine.runtime._STACK.get() == ()


def _nodes(program: Program, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[list[Any]]:
    """Each backend's trace nodes of one run of the model."""
    nodes = []
    for b in BACKENDS:
        b.clear_param_store()
        torch.manual_seed(0)
        nodes.append(list(b.poutine.trace(program(b)).get_trace(*args, **kwargs).nodes.values()))
    return nodes


@pytest.mark.parametrize("name", ["deterministic", "subsample", "observed_in_plates", "discrete"])
def test_site_predicates_agree_with_pyros(name: str) -> None:
    program, args, kwargs = MODELS[name]
    ours, theirs = _nodes(program, args, kwargs)
    assert [n["name"] for n in ours] == [n["name"] for n in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        for include in (False, True):
            assert is_sample_site(mine, include_deterministic=include) == pyro_inspect.is_sample_site(
                other, include_deterministic=include
            ), (mine["name"], include)
        assert site_is_deterministic(mine) == bool(pyro_inspect.site_is_deterministic(other)), mine["name"]


def test_site_predicates_name_what_they_exclude() -> None:
    nodes = {n["name"]: n for n in _nodes(observed_in_plates, (DATA,), {})[0]}
    assert is_sample_site(nodes["scale"]) and is_sample_site(nodes["y"]) and is_sample_site(nodes["x_unobserved"])
    assert not is_sample_site(nodes["data"])  # the plate's subsample site
    assert not is_sample_site(nodes["ignored"]) and is_sample_site(nodes["ignored"], include_deterministic=True)
    assert not is_sample_site(nodes["x"]) and site_is_deterministic(nodes["x"])  # obs_mask's combined value
    assert not site_is_deterministic(nodes["x_observed"]) and not site_is_deterministic(nodes["data"])


def test_track_provenance_tags_direct_dependencies_only() -> None:
    def model() -> None:
        w = ember.param("w", torch.tensor(2.0))
        a = ember.sample("a", dist.Normal(0.0, 1.0))
        b = ember.deterministic("b", w * a)
        ember.sample("c", dist.Normal(b, 1.0))
        with ember.plate("data", 3, subsample_size=2):
            pass

    for include, expected_b in ((False, {"w", "a"}), (True, {"b"})):
        ember.clear_param_store()
        with TrackProvenance(include_deterministic=include):
            tr = poutine.trace(model).get_trace()
        nodes = tr.nodes
        assert isinstance(nodes["a"]["value"], ProvenanceTensor)
        assert get_provenance(nodes["w"]["value"]) == {"w"} and get_provenance(nodes["a"]["value"]) == {"a"}
        assert get_provenance(nodes["b"]["value"]) == expected_b
        assert get_provenance(nodes["c"]["value"]) == {"c"}  # a tagged value forgets its inputs
        assert get_provenance(nodes["data"]["value"]) == frozenset()
        assert nodes["a"]["value"].shape == torch.Size([])
    assert not isinstance(ember.get_param_store()["w"], ProvenanceTensor)
    with pytest.raises(TypeError):
        TrackProvenance(True)  # type: ignore[call-arg]  # keyword-only, as in Pyro


@pytest.mark.parametrize("include_deterministic", [False, True])
def test_track_provenance_tags_the_sites_pyros_does(include_deterministic: bool) -> None:
    pyro_provenance: Any = importlib.import_module("pyro.ops.provenance")
    for name, (program, args, kwargs) in MODELS.items():
        tags = []
        for b, tracker, read in (
            (EMBER, TrackProvenance, get_provenance),
            (PYRO, pyro_inspect.TrackProvenance, pyro_provenance.get_provenance),
        ):
            b.clear_param_store()
            torch.manual_seed(0)
            model = program(b)
            with torch.no_grad(), tracker(include_deterministic=include_deterministic):
                tr = b.poutine.trace(model).get_trace(*args, **kwargs)
            tags.append({n: read(site["value"]) for n, site in tr.nodes.items() if site["type"] in ("sample", "param")})
        assert tags[0] == tags[1], name

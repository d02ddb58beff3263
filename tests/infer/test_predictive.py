"""Predictive: output sites, shapes and values agree with pyro-ppl on the same seeds."""

from __future__ import annotations

import inspect
from typing import Any

import pyro
import pyro.infer
import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import MHResampler, Predictive, WeighedPredictive
from ember.poutine import runtime
from tests.parity._backends import assert_same_value, run_both

DATA = torch.tensor([0.5, -1.0, 2.0])


def _model(b: Any) -> Any:
    def model(data: torch.Tensor | None = None) -> torch.Tensor:
        mu = b.pyro.sample("mu", b.dist.Normal(0.0, 1.0))
        sigma = b.pyro.sample("sigma", b.dist.LogNormal(0.0, 0.5))
        with b.pyro.plate("N", 3):
            y: torch.Tensor = b.pyro.sample("y", b.dist.Normal(mu, sigma), obs=data)
        return y

    return model


def _guide(b: Any) -> Any:
    def guide(data: torch.Tensor | None = None) -> None:
        m = b.pyro.param("m", torch.tensor(0.3))
        s = b.pyro.param("s", torch.tensor(0.5), constraint=b.dist.constraints.positive)
        b.pyro.sample("mu", b.dist.Normal(m, s))
        b.pyro.sample("sigma", b.dist.LogNormal(m, s))

    return guide


def _predict(**options: Any) -> tuple[Any, Any]:
    """Run ``Predictive(model, **options)()`` with both libraries on seed 0."""

    def program(b: Any) -> Any:
        opts = dict(options)
        if opts.pop("with_guide", False):
            opts["guide"] = _guide(b)
        if "posterior_samples" in opts:
            opts["posterior_samples"] = {k: v.clone() for k, v in opts["posterior_samples"].items()}
        return b.infer.Predictive(_model(b), **opts)()

    return run_both(program)


class _EmberBackend:
    """The namespaces ``_model`` and ``_guide`` need, for Ember alone."""

    pyro = ember
    dist = dist


POSTERIOR = {"mu": torch.tensor([0.0, 1.0, -1.0, 2.0]), "sigma": torch.tensor([1.0, 0.5, 2.0, 1.5])}


@pytest.mark.parametrize(
    ("options", "shapes"),
    [
        ({"num_samples": 5}, {"mu": (5, 1), "sigma": (5, 1), "y": (5, 3)}),
        ({"num_samples": 5, "parallel": True}, {"mu": (5, 1), "sigma": (5, 1), "y": (5, 3)}),
        ({"posterior_samples": POSTERIOR}, {"y": (4, 3)}),
        ({"posterior_samples": POSTERIOR, "parallel": True}, {"y": (4, 3)}),
        ({"posterior_samples": POSTERIOR, "return_sites": ["mu", "y", "_RETURN"]}, {"mu": (4, 1), "y": (4, 3), "_RETURN": (4, 3)}),
        ({"posterior_samples": POSTERIOR, "return_sites": None}, {"mu": (4, 1), "sigma": (4, 1), "y": (4, 3)}),
        ({"posterior_samples": POSTERIOR, "return_sites": ("_RETURN",), "parallel": True}, {"_RETURN": (4, 3)}),
        ({"num_samples": 3, "with_guide": True}, {"mu": (3, 1), "sigma": (3, 1), "y": (3, 3)}),
        ({"num_samples": 3, "with_guide": True, "parallel": True}, {"mu": (3, 1), "sigma": (3, 1), "y": (3, 3)}),
        ({"num_samples": 3, "with_guide": True, "return_sites": {"y"}}, {"y": (3, 3)}),
    ],
    ids=["prior", "prior-parallel", "posterior", "posterior-parallel", "return-sites", "all-sites",
         "return-only-parallel", "guide", "guide-parallel", "guide-named-site"],
)
def test_sites_shapes_and_values_match_pyro(options: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
    ours, theirs = _predict(**options)
    assert {name: tuple(value.shape) for name, value in ours.items()} == shapes
    assert_same_value(ours, theirs, "predictive")


def test_posterior_values_are_kept_and_plate_sites_broadcast() -> None:
    samples = Predictive(_model(_EmberBackend), POSTERIOR, return_sites=["mu", "y"], parallel=True)()
    torch.testing.assert_close(samples["mu"], POSTERIOR["mu"].reshape(4, 1))


def test_leading_dim_mismatch_warns_and_uses_the_samples_size() -> None:
    with pytest.warns(
        UserWarning,
        match="Sample's leading dimension size 4 is different from the provided 7 num_samples argument. Defaulting to 4.",
    ):
        predictive = Predictive(_model(_EmberBackend), POSTERIOR, num_samples=7)
    assert predictive.num_samples == 4
    assert predictive()["y"].shape == (4, 3)


def test_bad_arguments_raise_as_pyro() -> None:
    model = _model(_EmberBackend)
    with pytest.raises(ValueError, match="Either posterior_samples or num_samples must be specified."):
        Predictive(model)
    with pytest.raises(ValueError, match="No sample sites in posterior samples to infer `num_samples`."):
        Predictive(model, posterior_samples={})
    with pytest.raises(ValueError, match="`posterior_samples` cannot be provided with the `guide` argument."):
        Predictive(model, POSTERIOR, guide=_guide(_EmberBackend))
    with pytest.raises(AssertionError):
        Predictive(model, num_samples=2, return_sites="mu")  # type: ignore[arg-type]  # a bare string is the mistake


def test_model_runs_masked_and_without_gradients() -> None:
    seen: list[tuple[Any, bool]] = []

    def model() -> None:
        loc = ember.param("loc", torch.tensor(1.0))
        ember.sample("x", dist.Normal(loc, 1.0))
        seen.append((ember.poutine.get_mask(), torch.is_grad_enabled()))

    samples = Predictive(model, num_samples=2)()
    assert not samples["x"].requires_grad
    assert seen and all(mask is False and not grad for mask, grad in seen)


def test_error_in_model_leaves_the_stack_empty() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(0.0, -1.0))

    with pytest.raises(ValueError, match="scale"):
        Predictive(model, num_samples=2)()
    assert runtime.get_stack() == ()


def test_is_a_module_with_call_get_samples_and_vectorized_trace() -> None:
    predictive = Predictive(_model(_EmberBackend), num_samples=3, return_sites=["mu", "y"])
    assert isinstance(predictive, torch.nn.Module)
    torch.manual_seed(1)
    mu, y = predictive.call()
    torch.manual_seed(1)
    samples = predictive.forward()
    torch.testing.assert_close(mu, samples["mu"])
    torch.testing.assert_close(y, samples["y"])
    with pytest.warns(DeprecationWarning, match="The method `.get_samples` has been deprecated in favor of `.forward`."):
        assert sorted(predictive.get_samples()) == ["mu", "y"]
    tr = predictive.get_vectorized_trace()
    assert tr.nodes["y"]["value"].shape == (3, 3)
    assert [f.name for f in tr.nodes["y"]["cond_indep_stack"]] == ["_num_predictive_samples", "N"]


def test_vectorized_trace_matches_pyro() -> None:
    def program(b: Any) -> Any:
        tr = b.infer.Predictive(_model(b), guide=_guide(b), num_samples=4).get_vectorized_trace(DATA)
        return {name: site["value"] for name, site in tr.nodes.items() if site["type"] == "sample"}

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs, "trace values")


def test_non_tensor_return_values() -> None:
    def model() -> dict[str, torch.Tensor]:
        return {"x": ember.sample("x", dist.Normal(0.0, 1.0))}

    # Predictive is typed dict[str, Tensor]; "_RETURN" holds whatever the model returns.
    parallel: dict[str, Any] = Predictive(model, num_samples=3, return_sites=["_RETURN"], parallel=True)()
    assert parallel["_RETURN"]["x"].shape == (3,)
    sequential = Predictive(model, num_samples=3, return_sites=["_RETURN"])()
    assert [tuple(r) for r in sequential["_RETURN"]] == [("x",)] * 3


def test_pyro_program_runs_unchanged_against_ember() -> None:
    samples = Predictive(_model(_EmberBackend), num_samples=2)(DATA)
    assert sorted(samples) == ["mu", "sigma", "y"]
    torch.testing.assert_close(samples["y"], DATA.expand(2, 3))
    pyro_infer: Any = pyro.infer  # pyro-ppl is not fully annotated
    theirs = inspect.signature(pyro_infer.Predictive)
    ours = list(inspect.signature(Predictive).parameters.values())
    # Pyro's parameters, in order, then Ember's keyword-only compile options (beyond Pyro).
    assert [(p.name, p.default) for p in ours[: len(theirs.parameters)]] == [
        (p.name, p.default) for p in theirs.parameters.values()
    ]
    assert [(p.name, p.default, p.kind) for p in ours[len(theirs.parameters) :]] == [
        ("compile", False, inspect.Parameter.KEYWORD_ONLY),
        ("backend", "inductor", inspect.Parameter.KEYWORD_ONLY),
    ]


def _nested_model(b: Any) -> Any:
    def model(x: torch.Tensor | None = None) -> Any:
        a = b.pyro.sample("a", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))
        b.pyro.deterministic("d", a.exp())
        with b.pyro.plate("outer", 2, dim=-2):
            loc = b.pyro.sample("b", b.dist.Normal(0.0, 1.0))
            with b.pyro.plate("inner", 3):
                c = b.pyro.sample("c", b.dist.Normal(loc, 1.0))
        with b.pyro.plate("data", 5, subsample_size=3) as idx:
            b.pyro.sample("y", b.dist.Normal(a.sum(), 1.0), obs=None if x is None else x[idx])
        return c

    return model


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_nested_plates_deterministic_sites_and_subsampling_match_pyro(parallel: bool) -> None:
    posterior = {"a": torch.randn(3, 2), "b": torch.randn(3, 2, 1)}

    def program(b: Any) -> Any:
        model = _nested_model(b)
        return (
            b.infer.Predictive(model, num_samples=4, parallel=parallel, return_sites=None)(),
            b.infer.Predictive(model, num_samples=4, parallel=parallel, return_sites=["_RETURN", "d"])(),
            b.infer.Predictive(model, posterior, parallel=parallel)(torch.arange(5.0)),
        )

    ours, theirs = run_both(program)
    shapes = [{name: tuple(value.shape) for name, value in result.items()} for result in ours]
    assert shapes == [
        {"a": (4, 1, 1, 2), "b": (4, 2, 1), "c": (4, 2, 3), "y": (4, 1, 3), "d": (4, 1, 1, 2)},
        {"d": (4, 1, 1, 2), "_RETURN": (4, 2, 3)},
        {"c": (3, 2, 3), "d": (3, 1, 1, 2), "y": (3, 1, 3)},
    ]
    assert_same_value(ours, theirs, "predictive")


# ---------------------------------------------------------------------------------------------
# WeighedPredictive and MHResampler


def _weighed_program(parallel: bool) -> Any:
    def program(b: Any) -> tuple[Any, ...]:
        model = _model(b)

        def guide(data: torch.Tensor | None = None) -> None:
            b.pyro.sample("mu", b.dist.Normal(0.3, 0.5))
            b.pyro.sample("sigma", b.dist.LogNormal(0.1, 0.3))

        predictive = b.infer.WeighedPredictive(model, guide=guide, num_samples=6, parallel=parallel)
        result = predictive(model_guide=lambda: model(DATA))
        return result.samples, result.log_weights, result.guide_log_prob, result.model_log_prob

    return program


@pytest.mark.parametrize("parallel", [True, False])
def test_weighed_predictive_samples_and_weights_equal_pyros(parallel: bool) -> None:
    ours, theirs = run_both(_weighed_program(parallel), seed=11)
    assert sorted(ours[0]) == sorted(theirs[0]) == ["mu", "sigma", "y"]
    for name in theirs[0]:
        assert_same_value(ours[0][name], theirs[0][name], name)
    for mine, pyros in zip(ours[1:], theirs[1:]):
        assert mine.shape == (6,)
        assert torch.allclose(mine, pyros, rtol=1e-5, atol=1e-5)


def test_weighed_predictive_weights_are_the_joint_density_ratio() -> None:
    def model() -> None:
        ember.sample("z", dist.Normal(1.0, 1.0))

    def guide() -> None:
        ember.sample("z", dist.Normal(0.0, 2.0))

    result = WeighedPredictive(model, guide=guide, num_samples=7, parallel=True)()
    assert isinstance(result.samples, dict)
    z = result.samples["z"]
    assert torch.allclose(result.log_weights, dist.Normal(1.0, 1.0).log_prob(z) - dist.Normal(0.0, 2.0).log_prob(z))
    assert result.get_normalized_weights() is not None
    called = WeighedPredictive(model, guide=guide, num_samples=3).call()
    assert isinstance(called.samples, tuple) and called.samples[0].shape == (3,)


def test_weighed_predictive_without_a_guide_is_refused() -> None:
    with pytest.raises(TypeError, match="WeighedPredictive needs a guide"):
        WeighedPredictive(lambda: None, num_samples=3)
    with pytest.raises(TypeError, match="got guide=None"):
        WeighedPredictive(lambda: None, posterior_samples={"z": torch.zeros(3)})


def test_mh_resampler_turns_weighed_draws_into_draws_of_the_target() -> None:
    def model() -> None:
        ember.sample("z", dist.Normal(1.0, 0.7))

    def guide() -> None:
        ember.sample("z", dist.Normal(0.0, 2.0))

    n = 2000
    resampler = MHResampler(WeighedPredictive(model, guide=guide, num_samples=n, parallel=True), stored_samples_slice=slice(-1, None))
    for _ in range(30):
        result = resampler()
    z = result.samples
    assert isinstance(z, dict)
    # The chains mix fast (acceptance is high): 2000 nearly independent draws of N(1, 0.7).
    assert z["z"].mean().item() == pytest.approx(1.0, abs=4 * 0.7 / n**0.5)
    assert z["z"].std().item() == pytest.approx(0.7, abs=0.05)
    assert int(resampler.get_min_sample_transition_count()) > 0
    assert int(resampler.get_total_transition_count()) <= 29 * n
    stored = resampler.get_stored_samples()
    assert isinstance(stored.samples, dict) and stored.samples["z"].shape == (n,)


def test_mh_resampler_refuses_a_sampler_without_log_weights() -> None:
    resampler = MHResampler(lambda: {"z": torch.zeros(3)})  # type: ignore[arg-type, return-value]  # the point of the test
    with pytest.raises(TypeError, match="must return WeighedPredictiveResults with log_weights, got dict"):
        resampler()
    assert resampler.samples is None and resampler.source_samples == []

"""AutoReparam and MinimalReparam: Pyro's choices and traces on the same seed, marginals unchanged."""

from __future__ import annotations

from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import AutoReparam, MinimalReparam, Strategy
from tests.parity._backends import EMBER, Backend, assert_traces_match, run_both


def _model(b: Backend) -> Any:
    def model() -> None:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 2.0))
        b.pyro.sample("scale", b.dist.LogNormal(0.0, 1.0))
        b.pyro.sample("t", b.dist.StudentT(4.0, loc, 1.5))
        b.pyro.sample("k", b.dist.RelaxedOneHotCategorical(torch.tensor(0.5), logits=torch.zeros(3)))
        with b.pyro.plate("data", 2):
            b.pyro.sample("y", b.dist.Normal(loc, 1.0), obs=torch.tensor([0.3, 0.9]))

    return model


@pytest.mark.parametrize("centered", [None, 0.0, 0.4])
def test_auto_reparam_chooses_and_traces_as_pyro_does(centered: float | None) -> None:
    def program(b: Backend) -> tuple[Any, dict[str, str]]:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        strategy = reparams.AutoReparam(centered=centered)
        tr = b.poutine.trace(strategy(_model(b))).get_trace()
        return tr, {name: type(r).__name__ for name, r in strategy.config.items()}

    (ours, our_config), (theirs, their_config) = run_both(program, seed=2)
    assert our_config == their_config
    assert our_config["loc"] == our_config["t"] == "LocScaleReparam"
    assert (our_config["scale"], our_config["k"], our_config["y"]) == ("TransformReparam", "GumbelSoftmaxReparam", "NoneType")
    assert_traces_match(ours, theirs)


def test_minimal_reparam_leaves_sites_that_need_nothing_alone_as_pyro_does() -> None:
    def program(b: Backend) -> tuple[Any, dict[str, Any]]:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        strategy = reparams.MinimalReparam()
        tr = b.poutine.trace(strategy(_model(b))).get_trace()
        return tr, dict(strategy.config)

    (ours, our_config), (theirs, their_config) = run_both(program, seed=2)
    assert our_config == their_config == {name: None for name in ("loc", "scale", "t", "k", "y")}
    assert_traces_match(ours, theirs)


def test_minimal_reparam_picks_the_stable_and_projected_normal_reparams_as_pyro_does() -> None:
    def program(b: Backend) -> tuple[Any, dict[str, str]]:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        learned_skew = torch.tensor(0.0, requires_grad=True)

        def model() -> None:
            b.pyro.sample("latent", b.dist.Stable(1.5, 0.5))
            b.pyro.sample("symmetric", b.dist.Stable(1.5, 0.0), obs=torch.tensor(0.2))
            b.pyro.sample("skewed", b.dist.Stable(1.5, 0.3), obs=torch.tensor(0.2))
            b.pyro.sample("learned", b.dist.Stable(1.5, learned_skew), obs=torch.tensor(0.2))
            b.pyro.sample("logprob", b.dist.StableWithLogProb(1.5, 0.3))
            b.pyro.sample("exp", b.dist.TransformedDistribution(b.dist.Stable(1.8, 0.0), [torch.distributions.ExpTransform()]))
            b.pyro.sample("direction", b.dist.ProjectedNormal(torch.tensor([0.0, 1.0, 2.0])))

        strategy = reparams.MinimalReparam()
        tr = b.poutine.trace(strategy(model)).get_trace()
        return tr, {name: type(r).__name__ for name, r in strategy.config.items()}

    (ours, our_config), (theirs, their_config) = run_both(program, seed=4)
    assert our_config == their_config
    chosen = {name: kind for name, kind in our_config.items() if kind != "NoneType" or name == "logprob"}
    assert chosen == {
        "latent": "LatentStableReparam", "symmetric": "SymmetricStableReparam", "skewed": "StableReparam",
        "learned": "StableReparam", "logprob": "NoneType", "exp": "TransformReparam",
        "exp_base": "LatentStableReparam", "direction": "ProjectedNormalReparam",
    }
    assert_traces_match(ours, theirs, check_log_prob=False)  # StableWithLogProb integrates numerically


def test_auto_reparam_leaves_the_marginals_unchanged() -> None:
    n = 20000

    def model() -> None:
        with ember.plate("draws", n):
            ember.sample("x", dist.Normal(1.0, 2.0))
            ember.sample("w", dist.LogNormal(0.0, 0.5))

    tr = poutine.trace(AutoReparam(centered=0.0)(model)).get_trace()
    x, w = tr.nodes["x"]["value"], tr.nodes["w"]["value"]
    assert "x_decentered" in tr.nodes and "w_base" in tr.nodes
    assert x.mean().item() == pytest.approx(1.0, abs=4 * 2.0 / n**0.5)
    assert x.std().item() == pytest.approx(2.0, rel=0.03)
    # E[w] = exp(sigma^2 / 2) for a log-normal.
    assert w.log().mean().item() == pytest.approx(0.0, abs=4 * 0.5 / n**0.5)
    assert w.mean().item() == pytest.approx(float(torch.tensor(0.125).exp()), rel=0.02)


def test_the_choice_is_made_once_per_site_and_kept_in_config() -> None:
    calls: list[str] = []

    class Counting(Strategy):
        def configure(self, msg: Any) -> None:
            calls.append(msg["name"])
            return None

    strategy = Counting()
    model = strategy(lambda: ember.sample("x", dist.Normal(0.0, 1.0)))
    model()
    model()
    assert calls == ["x"] and strategy.config == {"x": None}


def test_a_non_float_centering_is_refused() -> None:
    with pytest.raises(AssertionError, match="centered must be None or a float, got 1"):
        AutoReparam(centered=1)

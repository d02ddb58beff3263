"""TracePosterior and EmpiricalMarginal: moments, log densities, draws and WAIC match pyro-ppl."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import EmpiricalMarginal, Importance, TracePosterior
from ember.infer.abstract_infer import Marginals, WeightedTrace
from ember.poutine import Trace
from tests.parity._backends import assert_same_value, run_both

DATA = torch.tensor([0.3, -0.5, 1.2])


class _Ember:
    """The namespaces ``_model`` needs, for Ember alone."""

    pyro = ember
    dist = dist


def _model(b: Any) -> Any:
    def model(data: torch.Tensor) -> Any:
        loc = b.pyro.sample("loc", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))
        scale = b.pyro.sample("scale", b.dist.LogNormal(torch.zeros(2), 0.3).to_event(1))
        with b.pyro.plate("N", len(data)):
            b.pyro.sample("obs", b.dist.Normal(loc.sum(), scale.sum()), obs=data)
        return loc

    return model


def test_marginal_statistics_match_pyro() -> None:
    def program(b: Any) -> Any:
        posterior = b.infer.Importance(_model(b), num_samples=12).run(DATA)
        single = b.infer.EmpiricalMarginal(posterior, sites="loc")
        stacked = b.infer.EmpiricalMarginal(posterior, sites=["loc", "scale"])
        ret = b.infer.EmpiricalMarginal(posterior)
        value = single.enumerate_support()[3]
        return (
            single.mean, single.variance, single.log_weights, single.sample_size,
            single.batch_shape, single.event_shape, single.sample(), single.sample((5,)),
            single.log_prob(value), stacked.mean, stacked.event_shape, stacked.sample((2,)),
            ret.mean, posterior.information_criterion(), posterior.information_criterion(pointwise=True),
        )

    ours, theirs = run_both(program)
    assert ours[5] == (2,)
    assert ours[10] == (2, 2)
    assert_same_value(ours, theirs, "marginal")


def test_mean_and_variance_are_weighted_by_the_log_weights() -> None:
    posterior = _Fixed([(1.0, 0.0), (3.0, torch.tensor(3.0).log().item())]).run()
    marginal = EmpiricalMarginal(posterior, sites="x")
    torch.testing.assert_close(marginal.mean, torch.tensor(2.5))
    torch.testing.assert_close(marginal.variance, torch.tensor(0.25 * 2.25 + 0.75 * 0.25))
    torch.testing.assert_close(marginal.log_prob(torch.tensor(3.0)), torch.tensor(0.75).log())
    assert marginal.log_prob(torch.tensor(2.0)).item() == float("-inf")


class _Fixed(TracePosterior):
    """A posterior whose traces hold one site ``x`` with given values and log weights."""

    def __init__(self, values: list[tuple[Any, Any]], chains: list[int] | None = None) -> None:
        self.values = values
        self.chains = chains
        super().__init__(num_chains=1 if chains is None else max(chains) + 1)

    def _traces(self, *args: Any, **kwargs: Any) -> Iterator[WeightedTrace]:
        for i, (value, log_weight) in enumerate(self.values):
            tr = Trace()
            tr.add_node("x", name="x", type="sample", value=torch.as_tensor(value), is_observed=False)
            tr.add_node("y", name="y", type="sample", value=torch.tensor(0.0), is_observed=True)
            if self.chains is None:
                yield tr, log_weight
            else:
                yield tr, log_weight, self.chains[i]


def test_samples_with_several_chains_get_a_chain_dim() -> None:
    posterior = _Fixed([(1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (4.0, 0.0)], chains=[0, 1, 0, 1]).run()
    marginal = EmpiricalMarginal(posterior, sites="x")
    assert marginal.batch_shape == (2,)
    torch.testing.assert_close(marginal.enumerate_support(), torch.tensor([[1.0, 3.0], [2.0, 4.0]]))
    torch.testing.assert_close(marginal.mean, torch.tensor([2.0, 3.0]))
    assert marginal.sample((7,)).shape == (7, 2)
    support = Marginals(posterior, "x").support(flatten=True)
    torch.testing.assert_close(support["x"], torch.tensor([1.0, 3.0, 2.0, 4.0]))


def test_drawing_a_trace_drops_observations_and_follows_weights() -> None:
    posterior = _Fixed([(1.0, -1e9), (2.0, 0.0)]).run()
    tr = posterior()
    assert list(tr.nodes) == ["x"]
    assert tr.nodes["x"]["value"].item() == 2.0
    assert "y" in posterior.exec_traces[1].nodes, "the stored trace keeps its observations"


def test_bad_use_raises() -> None:
    with pytest.raises(AttributeError, match="call .run"):
        _Fixed([])()
    with pytest.raises(AssertionError, match="trace_dist must be trace posterior distribution object"):
        EmpiricalMarginal(object())  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(AssertionError, match="chain id 3"):
        _Bad().run()
    discrete = _Fixed([(1, 0.0), (2, 0.0)]).run()
    with pytest.raises(ValueError, match="Mean for discrete empirical distribution undefined"):
        EmpiricalMarginal(discrete, "x").mean
    with pytest.raises(ValueError, match="Variance for discrete empirical distribution undefined"):
        EmpiricalMarginal(discrete, "x").variance
    marginal = EmpiricalMarginal(_Fixed([(1.0, 0.0)]).run(), "x", validate_args=True)
    with pytest.raises(ValueError, match=r"``value.shape`` must be torch.Size\(\[\]\)"):
        marginal.log_prob(torch.zeros(3))


class _Bad(TracePosterior):
    """Labels a trace with a chain it does not have."""

    def _traces(self, *args: Any, **kwargs: Any) -> Iterator[WeightedTrace]:
        yield Trace(), 0.0, 3


def test_information_criterion_needs_one_observation_site() -> None:
    def model() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))
        ember.sample("b", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    posterior = Importance(model, num_samples=2).run()
    with pytest.raises(ValueError, match="Infomation criterion calculation only works for models with one observation node."):
        posterior.information_criterion()
    assert Importance(model, num_samples=2).information_criterion() == {}


def test_marginals_hold_one_empirical_marginal_per_site() -> None:
    posterior = Importance(_model(_Ember), num_samples=4).run(DATA)
    marginals = posterior.marginal(["loc", "scale"])
    assert sorted(marginals.empirical) == ["loc", "scale"]
    assert all(isinstance(m, EmpiricalMarginal) for m in marginals.empirical.values())
    assert marginals.support()["scale"].shape == (4, 2)
    assert list(Marginals(posterior).empirical) == ["_RETURN"]


# ---------------------------------------------------------------------------------------------
# TracePredictive (deprecated)


def _predictive_program(b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    def model(n: int) -> torch.Tensor:
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
        with b.pyro.plate("N", n):
            y: torch.Tensor = b.pyro.sample("y", b.dist.Normal(loc, 0.5), obs=torch.linspace(-1.0, 1.0, n))
        return y

    posterior = b.infer.Importance(model, num_samples=20).run(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        predictive = b.infer.TracePredictive(model, posterior, num_samples=5).run(3)
    marginal = predictive.marginal(["loc"]).empirical["loc"]
    returns = torch.stack([tr.nodes["_RETURN"]["value"] for tr in predictive.exec_traces])
    return marginal.mean, returns


def test_trace_predictive_matches_pyro_and_resizes_plates_to_the_new_data() -> None:
    with pytest.warns(FutureWarning, match="The `TracePredictive` class is deprecated"):
        ember.infer.TracePredictive(lambda: None, Importance(lambda: None, num_samples=1), num_samples=1)
    ours, theirs = run_both(_predictive_program, seed=9)
    assert ours[1].shape == (5, 3)
    assert torch.allclose(ours[0], theirs[0]) and torch.allclose(ours[1], theirs[1])


def test_trace_predictive_keeps_only_the_kept_sites() -> None:
    def model() -> None:
        ember.sample("a", dist.Normal(0.0, 1.0))
        ember.sample("b", dist.Normal(0.0, 1.0))

    posterior = Importance(model, num_samples=3).run()
    kept = {tr.nodes["a"]["value"].item() for tr in posterior.exec_traces}
    with pytest.warns(FutureWarning):
        predictive = ember.infer.TracePredictive(model, posterior, num_samples=4, keep_sites=["a"]).run()
    for tr in predictive.exec_traces:
        assert tr.nodes["a"]["value"].item() in kept

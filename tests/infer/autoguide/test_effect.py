"""Effect-based autoguides: ``AutoNormalMessenger`` and ``AutoRegressiveMessenger``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.distributions import constraints
from ember.infer.autoguide import AutoMessenger, AutoNormalMessenger, AutoRegressiveMessenger
from tests.infer.autoguide._models import DATA, assert_same_store, autoguide, mixed, reload_without_store, store_state
from tests.parity._backends import EMBER, Backend, assert_same_error, assert_traces_match, run_both

GUIDES = ["AutoNormalMessenger", "AutoRegressiveMessenger"]


def hierarchical(data: torch.Tensor) -> None:
    """A module-level model, so that guides built on it pickle."""
    scale = ember.sample("scale", dist.LogNormal(0.0, 1.0))
    with ember.plate("N", len(data)):
        z = ember.sample("z", dist.Normal(0.0, scale))
        ember.sample("obs", dist.Normal(z, 1.0), obs=data)


@pytest.mark.parametrize("guide_name", GUIDES)
def test_traces_params_and_gradients_match_pyro(guide_name: str) -> None:
    def program(backend: Backend) -> Any:
        guide = getattr(autoguide(backend), guide_name)(mixed(backend))
        with backend.poutine.trace() as outer:
            samples = guide(DATA)
        model_trace, guide_trace = guide.get_traces()
        loss = guide_trace.log_prob_sum() - model_trace.log_prob_sum()
        torch.autograd.backward(loss)
        grads = {name: p.grad.clone() for name, p in guide.named_parameters()}
        return outer.trace, model_trace, guide_trace, samples, store_state(backend), grads

    ours, theirs = run_both(program)
    assert_traces_match(ours[0], theirs[0])
    assert_traces_match(ours[1], theirs[1])
    assert_traces_match(ours[2], theirs[2])
    assert sorted(ours[3]) == sorted(theirs[3])
    assert_same_store(ours[4], theirs[4])
    assert sorted(ours[5]) == sorted(theirs[5])
    for name in theirs[5]:
        assert torch.allclose(ours[5][name], theirs[5][name], rtol=1e-4, atol=1e-6), name


def test_param_names_follow_sites_and_cover_full_plates() -> None:
    guide = AutoNormalMessenger(mixed(EMBER))
    guide(DATA)
    shapes = {name: tuple(value.shape) for name, value in ember.get_param_store().items()}
    assert shapes == {
        "locs.a": (),
        "scales.a": (),
        "locs.s": (),
        "scales.s": (),
        "locs.p": (2,),
        "scales.p": (2,),
        "locs.z": (10,),
        "scales.z": (10,),
    }
    assert ember.get_param_store()._constraints["scales.a"] is constraints.positive


def test_median_matches_pyro() -> None:
    def program(backend: Backend) -> Any:
        guide = autoguide(backend).AutoNormalMessenger(mixed(backend))
        guide(DATA)
        return guide.median(DATA)

    ours, theirs = run_both(program)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert torch.allclose(ours[name], theirs[name]), name


def test_median_is_the_image_of_the_loc() -> None:
    guide = AutoNormalMessenger(hierarchical)
    guide(DATA)
    median = guide.median(DATA)
    assert median["scale"].item() == pytest.approx(guide.locs.scale.exp().item())
    assert torch.equal(median["obs"], DATA)


def test_amortized_plates_share_one_parameter() -> None:
    guide = AutoNormalMessenger(hierarchical, amortized_plates=("N",))
    guide(DATA)
    assert guide.locs.z.shape == () and guide.scales.z.shape == ()
    assert guide(DATA)["z"].shape == (10,)


def test_subclass_overrides_one_site_and_falls_back_for_the_rest() -> None:
    class Custom(AutoNormalMessenger):
        def get_posterior(self, name: str, prior: Any) -> Any:
            if name == "z":
                weight = ember.param("z_weight", lambda: torch.tensor(0.5))
                return dist.Normal(weight * prior.loc, prior.scale)
            return super().get_posterior(name, prior)

    guide = Custom(hierarchical)
    guide(DATA)
    assert sorted(ember.get_param_store()) == ["locs.scale", "scales.scale", "z_weight"]
    _, guide_trace = guide.get_traces()
    assert type(guide_trace.nodes["z"]["fn"]).__name__ == "Normal"


def test_first_call_inside_a_particle_plate_keeps_params_unbatched() -> None:
    guide = AutoNormalMessenger(hierarchical)
    with ember.plate("particles", 5, dim=-2):
        samples = guide(DATA)
    assert samples["z"].shape == (5, 10)
    # Pyro 1.9.2 gives locs.z the shape (5, 10) here (see AutoMessenger._adjust_plates).
    assert guide.locs.scale.shape == () and guide.locs.z.shape == (10,)


def test_bad_init_scale_raises_as_in_pyro() -> None:
    def program(backend: Backend) -> None:
        autoguide(backend).AutoNormalMessenger(mixed(backend), init_scale=-0.5)

    ours, _ = assert_same_error(program)
    assert str(ours) == "Expected init_scale > 0. but got -0.5"


def test_discrete_site_gets_pyro_advice() -> None:
    def program(backend: Backend) -> None:
        def model() -> None:
            backend.pyro.sample("k", backend.dist.Bernoulli(0.3))

        autoguide(backend).AutoNormalMessenger(model)()

    ours, _ = assert_same_error(program)
    assert "Continuous inference cannot handle discrete sample site 'k'" in str(ours)


@pytest.mark.parametrize("guide_cls", [AutoNormalMessenger, AutoRegressiveMessenger])
def test_torch_save_round_trip_samples_the_same_posterior(guide_cls: type[AutoMessenger]) -> None:
    guide = guide_cls(hierarchical)
    guide(DATA)
    loaded = reload_without_store(guide)
    torch.manual_seed(2)
    expected = guide(DATA)
    torch.manual_seed(2)
    got = loaded(DATA)
    assert all(torch.equal(got[name], expected[name]) for name in expected)
    assert sorted(loaded.state_dict()) == sorted(guide.state_dict())


def test_svi_with_a_messenger_guide_matches_pyro() -> None:
    def program(backend: Backend) -> Any:
        model = mixed(backend)
        guide = autoguide(backend).AutoNormalMessenger(model)
        svi = backend.infer.SVI(model, guide, backend.pyro.optim.Adam({"lr": 0.02}), backend.infer.Trace_ELBO())
        losses = [svi.step(DATA) for _ in range(10)]
        return losses, store_state(backend)

    ours, theirs = run_both(program)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-4, abs=1e-4)
    assert_same_store(ours[1], theirs[1])


def test_guide_messenger_trace_is_independent_of_outer_trace() -> None:
    guide = AutoNormalMessenger(hierarchical)
    tr = poutine.trace(guide).get_trace(DATA)
    assert [name for name, site in tr.nodes.items() if site["type"] == "sample"] == ["scale", "N", "z", "obs"]


@pytest.mark.parametrize("weight_type", ["element-wise", "scalar"])
@pytest.mark.parametrize("hierarchical_sites", [None, ["z"]])
def test_hierarchical_messenger_matches_pyro(weight_type: str, hierarchical_sites: list[str] | None) -> None:
    def program(backend: Backend) -> Any:
        base: Any = autoguide(backend).AutoHierarchicalNormalMessenger

        class Guide(base):  # type: ignore[misc]  # pyro's classes are untyped (Any)
            pass

        Guide.weight_type = weight_type
        guide = Guide(mixed(backend), hierarchical_sites=hierarchical_sites, init_weight=0.5)
        guide(DATA)
        model_trace, guide_trace = guide.get_traces()
        torch.autograd.backward(guide_trace.log_prob_sum() - model_trace.log_prob_sum())
        grads = {name: p.grad.clone() for name, p in guide.named_parameters()}
        return guide_trace, store_state(backend), grads, guide.median(DATA)

    ours, theirs = run_both(program)
    assert_traces_match(ours[0], theirs[0])
    assert_same_store(ours[1], theirs[1])
    for name in theirs[2]:
        assert torch.allclose(ours[2][name], theirs[2][name], rtol=1e-4, atol=1e-6), name
    for name in theirs[3]:
        assert torch.allclose(ours[3][name], theirs[3][name], rtol=1e-5), name
    expected = ["locs.a", "scales.a", "weights.a"] if hierarchical_sites is None else ["locs.a", "scales.a"]
    assert list(ours[1])[: len(expected)] == expected

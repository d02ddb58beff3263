"""The Jit ELBOs: compiled losses that reproduce the eager ones, and the compile cache."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch.jit._trace import TracerWarning

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer import (
    JitTrace_ELBO,
    JitTraceGraph_ELBO,
    JitTraceMeanField_ELBO,
    Trace_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from ember.infer.elbo import ELBO

DATA = torch.tensor([0.3, -1.2, 0.8, 2.1, -0.4, 1.0])


def model(data: torch.Tensor, *, flip: bool = True) -> None:
    loc = ember.sample("loc", dist.Normal(0.0, 1.0))
    if flip:
        loc = loc + ember.sample("flip", dist.Bernoulli(0.3))
    with ember.plate("N", len(data), subsample_size=3) as idx:
        z = ember.sample("z", dist.Normal(loc, 1.0))
        ember.sample("obs", dist.Normal(z, 0.5), obs=data[idx])


def guide(data: torch.Tensor, *, flip: bool = True) -> None:
    loc = ember.param("loc_q", torch.tensor(0.1))
    scale = ember.param("scale_q", torch.tensor(0.7), constraint=dist.constraints.positive)
    ember.sample("loc", dist.Normal(loc, scale))
    if flip:
        p = ember.param("p", torch.tensor(0.4), constraint=dist.constraints.unit_interval)
        ember.sample("flip", dist.Bernoulli(p))
    z_loc = ember.param("z_loc", torch.zeros(len(data)))
    with ember.plate("N", len(data), subsample_size=3) as idx:
        ember.sample("z", dist.Normal(z_loc[idx], 1.0))


def _run(elbo: ELBO, steps: int = 3, **kwargs: Any) -> tuple[list[float], dict[str, torch.Tensor]]:
    ember.clear_param_store()
    ember.set_rng_seed(0)
    losses = [elbo.loss_and_grads(model, guide, DATA, **kwargs) for _ in range(steps)]
    losses.append(elbo.loss(model, guide, DATA, **kwargs))
    losses.append(elbo.differentiable_loss(model, guide, DATA, **kwargs).item())
    grads = {n: leaf.grad.clone() for n, leaf in ember.get_param_store().named_parameters() if leaf.grad is not None}
    return losses, grads


@pytest.mark.parametrize(
    ("jit_cls", "eager_cls", "flip"),
    [(JitTrace_ELBO, Trace_ELBO, True), (JitTraceGraph_ELBO, TraceGraph_ELBO, True), (JitTraceMeanField_ELBO, TraceMeanField_ELBO, False)],
    ids=["Trace_ELBO", "TraceGraph_ELBO", "TraceMeanField_ELBO"],
)
def test_compiled_losses_and_gradients_equal_the_eager_ones_step_after_step(jit_cls: Any, eager_cls: Any, flip: bool) -> None:
    eager = _run(eager_cls(num_particles=2), flip=flip)
    compiled = _run(jit_cls(num_particles=2, ignore_jit_warnings=True), flip=flip)
    assert compiled[0] == pytest.approx(eager[0], rel=1e-5)
    assert sorted(compiled[1]) == sorted(eager[1]) and compiled[1]
    assert all(torch.allclose(compiled[1][n], eager[1][n], rtol=1e-5, atol=1e-6) for n in eager[1])


def test_loss_and_surrogate_loss_is_public_as_in_pyro() -> None:
    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    ember.set_rng_seed(0)
    loss, surrogate = elbo.loss_and_surrogate_loss(model, guide, DATA)
    ember.clear_param_store()
    ember.set_rng_seed(0)
    assert loss.item() == pytest.approx(Trace_ELBO().loss(model, guide, DATA), rel=1e-6)
    assert not loss.requires_grad and surrogate.requires_grad


def test_compiling_draws_no_random_numbers() -> None:
    ember.set_rng_seed(0)
    Trace_ELBO().loss(model, guide, DATA)
    after_eager = torch.get_rng_state()
    ember.clear_param_store()
    ember.set_rng_seed(0)
    JitTrace_ELBO(ignore_jit_warnings=True).loss(model, guide, DATA)
    assert torch.equal(torch.get_rng_state(), after_eager)


def test_optimized_graphs_may_reorder_draws_but_still_estimate_the_loss() -> None:
    eager, _ = _run(Trace_ELBO(num_particles=2), steps=2)
    optimized, _ = _run(JitTrace_ELBO(num_particles=2, ignore_jit_warnings=True, jit_options={"optimize": True}), steps=2)
    assert optimized[0] == pytest.approx(eager[0], rel=1e-5)  # the eager first call
    assert all(torch.isfinite(torch.tensor(optimized)))


def test_kwargs_model_and_arg_count_are_part_of_the_compile_key() -> None:
    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    elbo.loss(model, guide, DATA, flip=True)
    elbo.loss(model, guide, DATA, flip=True)
    assert elbo._compiled is not None and len(elbo._compiled.compiled) == 1
    without_flip = elbo.loss(model, guide, DATA, flip=False)
    assert len(elbo._compiled.compiled) == 2
    ember.set_rng_seed(1)
    compiled = elbo.loss(model, guide, DATA, flip=False)
    ember.set_rng_seed(1)
    assert compiled == pytest.approx(Trace_ELBO().loss(model, guide, DATA, flip=False), rel=1e-5)
    assert without_flip != compiled

    def other_model(data: torch.Tensor, *, flip: bool = True) -> None:
        model(data, flip=flip)

    elbo.loss(other_model, guide, DATA, flip=False)
    assert len(elbo._compiled.compiled) == 3


def test_list_and_dict_kwargs_hash_by_value_and_other_unhashables_by_id() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]  # the usual way to make a class unhashable

    def kw_model(data: torch.Tensor, **kwargs: Any) -> None:
        model(data)

    def kw_guide(data: torch.Tensor, **kwargs: Any) -> None:
        guide(data)

    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        elbo.loss(kw_model, kw_guide, DATA, sizes=[1, 2], options={"a": {1, 2}})
        elbo.loss(kw_model, kw_guide, DATA, sizes=[1, 2], options={"a": {1, 2}})
    assert elbo._compiled is not None and len(elbo._compiled.compiled) == 1
    with pytest.warns(UserWarning, match="^Failed to hash kwargs; attempting to hash by id.$"):
        elbo.loss(kw_model, kw_guide, DATA, thing=Unhashable())
    assert len(elbo._compiled.compiled) == 2


def test_compiled_calls_still_show_their_params_to_outer_handlers() -> None:
    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    for _ in range(2):
        with poutine.trace(param_only=True) as capture:
            elbo.loss_and_grads(model, guide, DATA)
        assert sorted(capture.trace.nodes) == ["loc_q", "p", "scale_q", "z_loc"]


def test_compiled_graph_reads_the_current_param_values() -> None:
    def point_guide(data: torch.Tensor) -> None:
        ember.sample("loc", dist.Delta(ember.param("loc_q", torch.tensor(0.0))))

    def point_model(data: torch.Tensor) -> None:
        ember.sample("loc", dist.Normal(0.0, 1.0))

    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    assert elbo.loss(point_model, point_guide, DATA) == pytest.approx(0.5 * torch.log(torch.tensor(2 * torch.pi)).item())
    ember.get_param_store()["loc_q"] = torch.tensor(2.0)
    assert elbo.loss(point_model, point_guide, DATA) == pytest.approx(2.0 + 0.5 * torch.log(torch.tensor(2 * torch.pi)).item())


def test_tracer_warnings_pass_unless_ignored_and_the_deprecation_never_leaks() -> None:
    with pytest.warns(TracerWarning):
        JitTrace_ELBO().loss(model, guide, DATA)
    ember.clear_param_store()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        JitTrace_ELBO(ignore_jit_warnings=True).loss(model, guide, DATA)
    assert [str(w.message) for w in record] == []


def test_jit_options_reach_torch_jit_trace() -> None:
    with pytest.raises(TypeError, match="bogus"):
        JitTrace_ELBO(jit_options={"bogus": True}, ignore_jit_warnings=True).loss(model, guide, DATA)


def test_sgd_steps_on_captured_params_follow_the_eager_path() -> None:
    """What SVI does: capture the params of each step, then update them from their gradients."""
    params = []
    for loss in (Trace_ELBO(), JitTrace_ELBO(ignore_jit_warnings=True)):
        ember.clear_param_store()
        ember.set_rng_seed(0)
        for _ in range(4):
            with poutine.trace(param_only=True) as capture:
                loss.loss_and_grads(model, guide, DATA)
            with torch.no_grad():
                for site in capture.trace.nodes.values():
                    leaf = site["value"].unconstrained()
                    leaf -= 0.01 * leaf.grad
                    leaf.grad = None
        params.append({n: v.detach().clone() for n, v in ember.get_param_store().items()})
    eager, compiled = params
    assert sorted(eager) == sorted(compiled) == ["loc_q", "p", "scale_q", "z_loc"]
    assert all(torch.allclose(eager[n], compiled[n], atol=1e-6) for n in eager)
    assert not torch.equal(eager["loc_q"], torch.tensor(0.1))


def test_decaying_average_baseline_is_updated_by_the_eager_first_call_only() -> None:
    def flip_model(data: torch.Tensor) -> None:
        ember.sample("b", dist.Bernoulli(0.5))

    def flip_guide(data: torch.Tensor) -> None:
        p = ember.param("p", torch.tensor(0.3), constraint=dist.constraints.unit_interval)
        ember.sample("b", dist.Bernoulli(p), infer={"baseline": {"use_decaying_avg_baseline": True}})

    name = "__baseline_avg_downstream_cost_b"
    ember.set_rng_seed(0)
    TraceGraph_ELBO().loss_and_grads(flip_model, flip_guide, DATA)
    eager_average = ember.get_param_store()[name].detach().clone()
    ember.clear_param_store()
    ember.set_rng_seed(0)
    elbo = JitTraceGraph_ELBO(ignore_jit_warnings=True)
    elbo.loss_and_grads(flip_model, flip_guide, DATA)
    assert torch.equal(ember.get_param_store()[name], eager_average)  # compiling wrote nothing
    elbo.loss_and_grads(flip_model, flip_guide, DATA)
    assert torch.equal(ember.get_param_store()[name], eager_average)  # the graph cannot write to the store

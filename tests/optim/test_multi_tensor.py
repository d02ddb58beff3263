"""The multi-tensor PyroOptim update: the same values as one step per param, Pyro's state format."""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pyro
import pyro.optim
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import ember
import ember.distributions as dist
import ember.optim
import ember.optim.multi_tensor
from ember.distributions import constraints
from ember.infer import SVI, Trace_ELBO
from ember.optim import PyroOptim


def _model(x: torch.Tensor, y: torch.Tensor) -> None:
    a = ember.sample("a", dist.Normal(0.0, 10.0))
    b = ember.sample("b", dist.Normal(torch.zeros(2), 10.0).to_event(1))
    with ember.plate("data", len(x)):
        ember.sample("y", dist.Normal(a + x @ b, 1.0), obs=y)


def _guide(x: torch.Tensor, y: torch.Tensor) -> None:
    a_loc = ember.param("a_loc", torch.tensor(0.0))
    a_scale = ember.param("a_scale", torch.tensor(1.0), constraint=constraints.positive)
    ember.sample("a", dist.Normal(a_loc, a_scale))
    b_loc = ember.param("b_loc", torch.zeros(2))
    b_scale = ember.param("b_scale", torch.ones(2), constraint=constraints.positive)
    ember.sample("b", dist.Normal(b_loc, b_scale).to_event(1))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(50, 2, generator=gen)
    return x, 0.5 + x @ torch.tensor([1.0, -2.0]) + torch.randn(50, generator=gen)


@pytest.fixture
def ungrouped(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Switches grouping off: every param steps with its own optimizer, as before."""

    def switch_off() -> None:
        monkeypatch.setattr(ember.optim.multi_tensor, "supports_grouping", lambda optimizer: False)
        monkeypatch.setattr(ember.optim.optim, "supports_grouping", lambda optimizer: False)

    return switch_off


@pytest.fixture
def step_count() -> Iterator[list[int]]:
    """Counts torch optimizer ``step`` calls (a global post-step hook)."""
    calls = [0]

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        calls[0] += 1

    handle = register_optimizer_step_post_hook(hook)
    yield calls
    handle.remove()


def _run(optim: PyroOptim, steps: int, edit: Callable[[int, PyroOptim], None] | None = None) -> tuple[list[float], dict[str, torch.Tensor]]:
    ember.clear_param_store()
    torch.manual_seed(0)
    svi = SVI(_model, _guide, optim, Trace_ELBO())
    x, y = _data()
    losses = []
    for i in range(steps):
        losses.append(svi.step(x, y))
        if edit is not None:
            edit(i, optim)
    return losses, {name: value.detach().clone() for name, value in ember.get_param_store().items()}


@pytest.mark.parametrize(
    "make",
    [
        lambda: ember.optim.Adam({"lr": 0.05}),
        lambda: ember.optim.Adam({"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
        lambda: ember.optim.SGD({"lr": 0.01, "momentum": 0.9}),
        lambda: ember.optim.RMSprop({"lr": 0.01}),
        lambda: ember.optim.AdamW({"lr": 0.05}),
        lambda: ember.optim.Adam(lambda name: {"lr": 0.1 if "loc" in name else 0.02}),
    ],
    ids=["adam", "adam-amsgrad-wd", "sgd-momentum", "rmsprop", "adamw", "per-param-lr"],
)
def test_grouped_steps_give_the_trajectory_of_one_step_per_param(
    make: Callable[[], PyroOptim], ungrouped: Callable[[], None], step_count: list[int]
) -> None:
    grouped_losses, grouped_params = _run(make(), 15)
    grouped_calls = step_count[0]
    ungrouped()
    step_count[0] = 0
    losses, params = _run(make(), 15)
    assert grouped_losses == losses
    for name in params:
        assert torch.equal(grouped_params[name], params[name]), name
    # Four params stepped one by one vs one (or two, by lr) foreach update per SVI step.
    assert step_count[0] == 4 * 15
    assert grouped_calls < step_count[0]


def test_one_torch_step_per_svi_step_for_shared_hyperparameters(step_count: list[int]) -> None:
    _run(ember.optim.Adam({"lr": 0.05}), 5)
    assert step_count[0] == 5


def test_a_hyperparameter_edit_after_grouping_takes_effect(ungrouped: Callable[[], None]) -> None:
    def edit(i: int, optim: PyroOptim) -> None:
        if i == 4:
            leaf = dict(ember.get_param_store().named_parameters())["a_loc"]
            optim.optim_objs[leaf].param_groups[0]["lr"] = 0.5

    grouped = _run(ember.optim.Adam({"lr": 0.05}), 10, edit)
    ungrouped()
    reference = _run(ember.optim.Adam({"lr": 0.05}), 10, edit)
    assert grouped[0] == reference[0]
    assert all(torch.equal(grouped[1][name], reference[1][name]) for name in reference[1])


def test_a_member_state_reloaded_after_grouping_is_the_one_stepped() -> None:
    optim = ember.optim.Adam({"lr": 0.05})
    _run(optim, 3)
    leaf = dict(ember.get_param_store().named_parameters())["a_loc"]
    member = optim.optim_objs[leaf]
    member.load_state_dict(member.state_dict())  # replaces the member's state dicts
    x, y = _data()
    svi = SVI(_model, _guide, optim, Trace_ELBO())
    svi.step(x, y)
    assert int(member.state[leaf]["step"]) == 4


def test_state_round_trip_resumes_the_same_trajectory(tmp_path: pathlib.Path) -> None:
    losses, params = _run(ember.optim.Adam({"lr": 0.05}), 12)
    first = ember.optim.Adam({"lr": 0.05})
    _run(first, 6)
    first.save(tmp_path / "optim.pt")
    store_state, rng = ember.get_param_store().get_state(), torch.get_rng_state()
    ember.clear_param_store()
    ember.get_param_store().set_state(store_state)
    torch.set_rng_state(rng)
    resumed = ember.optim.Adam({"lr": 0.05})
    resumed.load(tmp_path / "optim.pt")
    svi = SVI(_model, _guide, resumed, Trace_ELBO())
    x, y = _data()
    assert [svi.step(x, y) for _ in range(6)] == losses[6:]
    for name, value in params.items():
        assert torch.equal(ember.param(name).detach(), value), name


def _state_bytes(state: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_saved_state_has_the_format_of_one_step_per_param_and_of_pyro(ungrouped: Callable[[], None]) -> None:
    optim = ember.optim.Adam({"lr": 0.05})
    _run(optim, 4)
    grouped_state = optim.get_state()
    ungrouped()
    reference = ember.optim.Adam({"lr": 0.05})
    _run(reference, 4)
    assert _state_bytes(grouped_state) == _state_bytes(reference.get_state())
    # pyro-ppl's PyroOptim on the same params saves the same structure and loads ember's state.
    pyro_optim: Any = getattr(pyro.optim, "Adam")({"lr": 0.05})
    leaves = dict(ember.get_param_store().named_parameters())
    for name, leaf in leaves.items():
        pyro.param(name, leaf.detach().clone())
    pyro_leaves = [getattr(pyro.param(name), "unconstrained")() for name in leaves]
    for leaf in pyro_leaves:
        leaf.grad = torch.ones_like(leaf)
    pyro_optim(pyro_leaves)
    pyro_state = pyro_optim.get_state()
    assert set(pyro_state) == set(grouped_state)
    for key, state in grouped_state.items():
        assert state["param_groups"] == pyro_state[key]["param_groups"]
        assert set(state["state"][0]) == set(pyro_state[key]["state"][0])
    pyro_optim.set_state(grouped_state)
    pyro.clear_param_store()


def test_a_closure_steps_each_optimizer_with_it() -> None:
    ember.clear_param_store()
    leaf = getattr(ember.param("w", torch.tensor(1.0)), "unconstrained")()
    leaf.grad = torch.tensor(1.0)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        return torch.tensor(0.0)

    ember.optim.SGD({"lr": 0.5})([leaf], closure)
    assert calls == [1] and ember.param("w").item() == 0.5


def _fused_run(make: Callable[[], PyroOptim], fused: bool, steps: int = 20) -> tuple[dict[str, torch.Tensor], dict[str | None, Any], set[Any]]:
    """Steps the four params of ``_guide`` with fixed gradients through ``step_grouped``."""
    ember.clear_param_store()
    _guide(*_data())
    leaves = [leaf for _, leaf in ember.get_param_store().named_parameters()]
    optim = make()
    gen = torch.Generator().manual_seed(3)
    for _ in range(steps):
        for leaf in leaves:
            leaf.grad = torch.randn(leaf.shape, generator=gen)
        optim._clip_and_step(leaves, fused=fused)
    assert optim._grouped is not None
    kinds = {(group.optimizer.param_groups[0].get("fused"), group.optimizer.param_groups[0]["foreach"]) for group in optim._grouped.groups}
    return {n: v.detach().clone() for n, v in ember.get_param_store().items()}, optim.get_state(), kinds


@pytest.mark.parametrize(
    "make, has_fused",
    [
        (lambda: ember.optim.Adam({"lr": 0.05}), True),
        (lambda: ember.optim.AdamW({"lr": 0.05, "weight_decay": 0.1}), True),
        (lambda: ember.optim.SGD({"lr": 0.01, "momentum": 0.9}), True),
        (lambda: ember.optim.RMSprop({"lr": 0.01}), False),
    ],
    ids=["adam", "adamw", "sgd-momentum", "rmsprop"],
)
def test_fused_grouped_steps_give_the_foreach_trajectory_to_rounding_and_its_state(make: Callable[[], PyroOptim], has_fused: bool) -> None:
    reference, reference_state, reference_kinds = _fused_run(make, fused=False)
    fused, fused_state, kinds = _fused_run(make, fused=True)
    assert reference_kinds == {(None, True)} or reference_kinds == {(False, True)}
    # torch's fused kernels where the class has one (RMSprop has none: foreach, as without fused).
    assert kinds == ({(True, False)} if has_fused else reference_kinds)
    for site in reference:
        torch.testing.assert_close(fused[site], reference[site], rtol=1e-6, atol=1e-6, msg=site)
    assert fused_state.keys() == reference_state.keys()
    for name, state in reference_state.items():
        assert fused_state[name]["param_groups"] == state["param_groups"]  # the members' own groups, unchanged
        for key, value in state["state"][0].items():
            got = fused_state[name]["state"][0][key]
            assert got.dtype == value.dtype and got.shape == value.shape, (name, key)
            torch.testing.assert_close(got, value, rtol=1e-5, atol=1e-6)

"""PyroLRScheduler: per-parameter schedules, stepped by the user, as in pyro-ppl."""

from __future__ import annotations

from typing import Any

import pyro
import pyro.optim
import pytest
import torch

import ember
import ember.optim
from ember.optim import PyroLRScheduler, lr_scheduler


def _schedulers() -> list[str]:
    base = torch.optim.lr_scheduler.LRScheduler
    return sorted(
        name
        for name, cls in vars(torch.optim.lr_scheduler).items()
        if isinstance(cls, type) and issubclass(cls, base) and not name.startswith("_")
    )


def test_every_public_torch_scheduler_has_a_factory() -> None:
    assert sorted(set(lr_scheduler.__all__) - {"PyroLRScheduler"}) == _schedulers()
    for name in _schedulers():
        factory = getattr(ember.optim, name)
        scheduler = factory({"optimizer": torch.optim.SGD, "optim_args": {"lr": 0.1}})
        assert isinstance(scheduler, PyroLRScheduler)
        assert scheduler.pt_scheduler_constructor is getattr(torch.optim.lr_scheduler, name)
        assert scheduler.pt_optim_constructor is torch.optim.SGD


def test_optim_args_dict_is_not_modified() -> None:
    args: dict[str, Any] = {"optimizer": torch.optim.SGD, "optim_args": {"lr": 0.1}, "gamma": 0.5}
    ember.optim.ExponentialLR(args)
    ember.optim.ExponentialLR(args)
    assert args == {"optimizer": torch.optim.SGD, "optim_args": {"lr": 0.1}, "gamma": 0.5}


def _schedule(backend: Any, make: Any, metric: bool = False) -> tuple[list[float], torch.Tensor]:
    backend.clear_param_store()
    backend.param("w", torch.tensor([1.0, 2.0]))
    scheduler = make(backend.optim)
    lrs = []
    for step in range(6):
        leaf = dict(backend.get_param_store().named_parameters())["w"]
        leaf.grad = torch.tensor([1.0, -1.0])
        scheduler([leaf])
        if metric:
            scheduler.step(1.0)
        else:
            scheduler.step()
        (optimizer,) = [sched.optimizer for sched in scheduler.optim_objs.values()]
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs, dict(backend.get_param_store().named_parameters())["w"].detach().clone()


@pytest.mark.parametrize(
    ("make", "metric"),
    [
        (lambda o: o.StepLR({"optimizer": torch.optim.SGD, "optim_args": {"lr": 1.0}, "step_size": 2, "gamma": 0.5}), False),
        (lambda o: o.ExponentialLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": 0.1}, "gamma": 0.9}), False),
        (lambda o: o.ReduceLROnPlateau({"optimizer": torch.optim.SGD, "optim_args": {"lr": 1.0}, "patience": 1}), True),
        (
            lambda o: o.LambdaLR(
                {"optimizer": torch.optim.SGD, "optim_args": {"lr": 1.0}, "lr_lambda": lambda epoch: 1.0 / (epoch + 1)},
                {"clip_value": 0.5},
            ),
            False,
        ),
    ],
    ids=["step", "exponential", "plateau", "lambda-clipped"],
)
def test_schedules_and_steps_match_pyro(make: Any, metric: bool) -> None:
    our_lrs, ours = _schedule(ember, make, metric)
    their_lrs, theirs = _schedule(pyro, make, metric)
    assert our_lrs == pytest.approx(their_lrs)
    torch.testing.assert_close(ours, theirs)


def test_state_of_a_scheduler_holds_scheduler_and_optimizer() -> None:
    ember.param("w", torch.tensor(1.0))
    scheduler = ember.optim.StepLR({"optimizer": torch.optim.SGD, "optim_args": {"lr": 1.0}, "step_size": 1})
    leaf = dict(ember.get_param_store().named_parameters())["w"]
    leaf.grad = torch.tensor(1.0)
    scheduler([leaf])
    scheduler.step()
    state = scheduler.get_state()["w"]
    assert sorted(state) == ["optimizer", "scheduler"]
    assert state["scheduler"]["last_epoch"] == 1

    restored = ember.optim.StepLR({"optimizer": torch.optim.SGD, "optim_args": {"lr": 1.0}, "step_size": 1})
    restored.set_state({"w": state})
    restored([leaf])
    (sched,) = restored.optim_objs.values()
    assert sched.last_epoch == 1
    assert sched.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)

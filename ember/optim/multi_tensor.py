"""One multi-tensor (``foreach``) update for the many one-param optimizers of a :class:`PyroOptim`.

:class:`~ember.optim.optim.PyroOptim` keeps one torch optimizer per param (Pyro's
``optim_objs``, whose per-param state dicts are the save format). Stepping them one by one
costs a Python-level ``step()`` per param, which dominates an SVI step on small models.
:class:`GroupedStep` steps all of them at once: params whose optimizers are the same torch
class with equal hyperparameters (and no per-optimizer hooks) are stepped by one optimizer
of that class built over all of them with ``foreach=True``, whose state *is* the per-param
optimizers' state dicts (shared by reference, updated in place). So ``optim_objs``,
``get_state``/``set_state``/``save``/``load`` and their format are unchanged, and a step
computes what the one-param steps compute (the ``foreach`` kernels do the same float
operations per tensor).

The plan is rebuilt when the set of stepped params changes or a hyperparameter of any
member changes (e.g. a learning-rate scheduler or a user editing ``param_groups``); every
step checks that, and that each shared state dict is still the member's own (it is
replaced by ``load_state_dict``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["GroupedStep", "supports_grouping"]


def supports_grouping(optimizer: Any) -> bool:
    """Whether a one-param optimizer can join a multi-tensor group.

    Only torch's own optimizers that take a ``foreach`` flag qualify (their state is per
    param and their step reads nothing but the group's hyperparameters and that state), with
    one param group of one param, no step hooks of their own, and no tensor learning rate
    (which ``foreach`` refuses without ``capturable``).
    """
    cls = type(optimizer)
    if not cls.__module__.startswith("torch.optim.") or "foreach" not in getattr(optimizer, "defaults", {}):
        return False
    groups = optimizer.param_groups
    if len(groups) != 1 or len(groups[0]["params"]) != 1:
        return False
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return False
    group = groups[0]
    return not (isinstance(group.get("lr"), torch.Tensor) and not group.get("capturable", False))


def _hyper(group: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((key, value) for key, value in group.items() if key != "params")


def _build(cls: type[Any], params: list[torch.Tensor], hyper: tuple[tuple[str, Any], ...], fused: bool) -> Any:
    """The optimizer of class ``cls`` over ``params``: fused where asked and torch has a kernel, else ``foreach``."""
    accepted = inspect.signature(cls).parameters
    arguments = {k: v for k, v in hyper if k in accepted}
    optimizer = None
    if fused and "fused" in accepted and not arguments.get("differentiable"):
        try:
            optimizer = cls(params, **{**arguments, "fused": True, "foreach": False})
        except (RuntimeError, ValueError):  # no fused kernel for these devices or dtypes
            optimizer = None
    if optimizer is None:
        optimizer = cls(params, **arguments)
        fused = False
    # Keys the constructor does not take (a scheduler's ``initial_lr``, AdamW's
    # ``decoupled_weight_decay``) are copied too.
    group = optimizer.param_groups[0]
    group.update(hyper)
    if fused:
        group.update(fused=True, foreach=False)
    elif not group.get("fused"):
        group["foreach"] = True
    return optimizer


class _Group:
    """Members sharing a class and hyperparameters, and the multi-tensor optimizer over them."""

    __slots__ = ("members", "params", "snapshots", "optimizer")

    def __init__(
        self, members: list[Any], params: list[torch.Tensor], hyper: tuple[tuple[str, Any], ...], fused: bool = False
    ) -> None:
        self.members = members
        self.params = params
        # Each member's param group as built: a step compares the live group against it.
        self.snapshots = [dict(member.param_groups[0]) for member in members]
        self.optimizer = _build(type(members[0]), params, hyper, fused)

    def current(self) -> bool:
        """Whether every member still has the group's hyperparameters; re-links shared state."""
        state = self.optimizer.state
        for member, p, snapshot in zip(self.members, self.params, self.snapshots):
            # One C-level dict comparison (values compare by identity first, so the
            # ``params`` list and tensor hyperparameters that were not replaced match).
            if member.param_groups[0] != snapshot:
                return False
            own = member.state[p]
            if state.get(p) is not own:
                state[p] = own
        return True


class GroupedStep:
    """Steps a fixed list of params, each with its own one-param optimizer, in few updates.

    :param params: the params, in stepping order.
    :param optimizers: each param's torch optimizer (a scheduler's inner optimizer).
    :param solo_steps: for params that cannot be grouped, the bound ``step`` to call, by
        index in ``params``; they are stepped one by one, in order, after the groups.
    :param fused: step each group with torch's fused kernel where its class has one for the
        params' devices and dtypes (``fused=True``), else with ``foreach``. The fused kernels
        compute the same update to float rounding (not bit for bit); the state is the same.

    A compiled SVI step can hold one and call :meth:`step` after ``backward``.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        optimizers: Sequence[Any],
        solo_steps: dict[int, Callable[[], Any]],
        fused: bool = False,
    ) -> None:
        self.key = (fused, *map(id, params))
        self.solo = [solo_steps[i] for i in sorted(solo_steps)]
        by_hyper: dict[tuple[Any, ...], tuple[list[Any], list[torch.Tensor]]] = {}
        for i, (p, optimizer) in enumerate(zip(params, optimizers)):
            if i in solo_steps:
                continue
            hyper = _hyper(optimizer.param_groups[0])
            key = (type(optimizer), *((k, id(v) if isinstance(v, torch.Tensor) else v) for k, v in hyper))
            try:
                members, group_params = by_hyper.setdefault(key, ([], []))
            except TypeError:  # an unhashable hyperparameter: step it alone
                self.solo.append(optimizer.step)
                continue
            members.append(optimizer)
            group_params.append(p)
        self.groups = [_Group(members, ps, _hyper(members[0].param_groups[0]), fused) for members, ps in by_hyper.values()]

    def step(self) -> bool:
        """Apply one update to every param; ``False`` (nothing stepped) if the plan is stale."""
        groups = self.groups
        for group in groups:
            if not group.current():
                return False
        for group in groups:
            group.optimizer.step()
        for solo in self.solo:
            solo()
        return True

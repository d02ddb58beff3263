""":class:`PyroOptim`: one torch optimizer per parameter, created when SVI first steps it.

SVI does not know its parameters in advance: a guide creates them with ``ember.param`` on its
first run. So the optimizer is a factory, not an optimizer: on each call with the leaf
tensors that took part in a step, it builds a torch optimizer for every leaf it has not seen
(with arguments that may depend on the leaf's name in the param store), optionally clips the
leaf's gradient, and steps that leaf's optimizer. Optimizer state is saved and restored by
param name, so it survives a param store round trip.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import torch
from torch.nn.utils import clip_grad_norm_, clip_grad_value_
from torch.serialization import MAP_LOCATION

from ember.optim.adagrad_rmsprop import AdagradRMSProp as _AdagradRMSPropOptimizer
from ember.optim.clipped_adam import ClippedAdam as _ClippedAdamOptimizer
from ember.optim.dct_adam import DCTAdam as _DCTAdamOptimizer
from ember.optim.multi_tensor import GroupedStep, supports_grouping
from ember.params.param_store import (
    module_from_param_with_module_name,
    normalize_param_name,
    user_param_name,
)
from ember.primitives import get_param_store

__all__ = ["AdagradRMSProp", "ClippedAdam", "DCTAdam", "OptimArgs", "PyroOptim", "is_scheduler"]

OptimArgs: TypeAlias = dict[str, Any] | Callable[..., dict[str, Any]]
"""Keyword arguments for each parameter's optimizer, or a function of the parameter's name
returning them: ``f(name)`` with ``"$$$"`` replaced by ``"."``, or (deprecated)
``f(module_name, param_name)``."""

_Step: TypeAlias = Callable[..., Any]


def is_scheduler(optimizer: object) -> bool:
    """Whether ``optimizer`` is a learning-rate scheduler wrapping an optimizer.

    Duck-typed as torch's schedulers have no single public base class across versions.
    """
    return hasattr(optimizer, "optimizer")


def _state_dict(optimizer: Any) -> dict[str, Any]:
    if is_scheduler(optimizer):
        return {"scheduler": optimizer.state_dict(), "optimizer": optimizer.optimizer.state_dict()}
    state: dict[str, Any] = optimizer.state_dict()
    return state


def _load_state_dict(optimizer: Any, state: dict[str, Any]) -> None:
    if is_scheduler(optimizer):
        optimizer.load_state_dict(state["scheduler"])
        optimizer.optimizer.load_state_dict(state["optimizer"])
    else:
        optimizer.load_state_dict(state)


def _clip_grad(param: torch.Tensor, clip_norm: float | None = None, clip_value: float | None = None) -> None:
    if clip_norm is not None:
        clip_grad_norm_(param, clip_norm)
    if clip_value is not None:
        clip_grad_value_(param, clip_value)


class PyroOptim:
    """Steps each parameter with its own torch optimizer, created on first sight.

    :param optim_constructor: a torch optimizer class (or any callable taking
        ``([param], **kwargs)`` and returning an optimizer).
    :param optim_args: the optimizer's keyword arguments, or a function of the param name
        returning them (see :data:`OptimArgs`).
    :param clip_args: ``{"clip_norm": ..., "clip_value": ...}`` (either key optional), or a
        function ``(module_name, param_name)`` returning such a dict; gradients are clipped
        before each step.

    >>> import ember, torch
    >>> ember.clear_param_store()
    >>> x = ember.param("x", torch.tensor(1.0))
    >>> x.unconstrained().grad = torch.tensor(1.0)
    >>> optim = PyroOptim(torch.optim.SGD, {"lr": 0.5})
    >>> optim([x.unconstrained()])
    >>> ember.param("x")
    tensor(0.5000, requires_grad=True)
    """

    def __init__(
        self,
        optim_constructor: Callable[..., Any],
        optim_args: OptimArgs,
        clip_args: OptimArgs | None = None,
    ) -> None:
        self.pt_optim_constructor = optim_constructor
        # AssertionError is the type Pyro raises for malformed arguments.
        if not (callable(optim_args) or isinstance(optim_args, dict)):
            raise AssertionError("optim_args must be function that returns defaults or a defaults dictionary")
        if clip_args is None:
            clip_args = {}
        if not (callable(clip_args) or isinstance(clip_args, dict)):
            raise AssertionError("clip_args must be function that returns defaults or a defaults dictionary")
        self.pt_optim_args = optim_args
        if callable(optim_args):
            self.pt_optim_args_argc = len(inspect.signature(optim_args).parameters)
        self.pt_clip_args = clip_args
        # Keyed by the unconstrained leaf tensor (tensors hash by identity).
        self.optim_objs: dict[torch.Tensor, Any] = {}
        self.grad_clip: dict[torch.Tensor, Callable[[torch.Tensor], None] | None] = {}
        # Per leaf: the clip function (or None) and the bound ``step`` to call. Resolved once,
        # so a step does no isinstance checks.
        self._steps: dict[torch.Tensor, tuple[Callable[[torch.Tensor], None] | None, _Step]] = {}
        # State loaded by ``set_state`` for params not seen yet, by param name.
        self._state_waiting_to_be_consumed: dict[str, Any] = {}
        # The multi-tensor plan for the last list of params stepped (see ``multi_tensor``).
        self._grouped: GroupedStep | None = None

    def __call__(self, params: Iterable[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        """Step every leaf in ``params``, creating optimizers for new ones.

        :param params: unconstrained leaf tensors (as ``ember.param(...).unconstrained()``).
        :param args: passed on to each optimizer's ``step``.
        """
        params = params if isinstance(params, list) else list(params)
        if args or kwargs:  # a closure or other step arguments: one optimizer at a time
            self._step_each(params, *args, **kwargs)
            return
        self._clip_and_step(params)

    def _clip_and_step(self, params: list[torch.Tensor], fused: bool = False) -> None:
        """:meth:`__call__` without step arguments; ``fused`` as for :meth:`step_grouped`."""
        steps = self._steps
        for p in params:
            entry = steps.get(p)
            if entry is None:
                entry = self._setup(p)
            clip = entry[0]
            if clip is not None:
                clip(p)
        self.step_grouped(params, fused)

    def step_grouped(self, params: list[torch.Tensor], fused: bool = False) -> None:
        """Step ``params`` (already set up, gradients clipped) with as few updates as possible.

        Params whose optimizers are torch's own, of one class and with equal
        hyperparameters, take one ``foreach`` update together; the rest step one by one.
        The values are those of stepping each optimizer alone. The plan is cached for the
        same list of params and rebuilt when it is stale.

        :param params: the params to step.
        :param fused: use torch's fused kernels where a group's class has one (the compiled
            SVI step does): the same update to float rounding, the same state.
        """
        grouped = self._grouped
        if grouped is None or grouped.key != (fused, *map(id, params)) or not grouped.step():
            grouped = self._grouped = self._plan(params, fused)
            grouped.step()

    def _plan(self, params: list[torch.Tensor], fused: bool = False) -> GroupedStep:
        optimizers = []
        solo: dict[int, _Step] = {}
        for i, p in enumerate(params):
            step = self._steps[p][1]
            optimizer = self.optim_objs[p]
            inner = optimizer.optimizer if is_scheduler(optimizer) else optimizer
            optimizers.append(inner)
            if not supports_grouping(inner):
                solo[i] = step
        return GroupedStep(params, optimizers, solo, fused)

    def _step_each(self, params: list[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        steps = self._steps
        for p in params:
            entry = steps.get(p)
            if entry is None:
                entry = self._setup(p)
            clip, step = entry
            if clip is not None:
                clip(p)
            step(*args, **kwargs)

    def _setup(self, p: torch.Tensor) -> tuple[Callable[[torch.Tensor], None] | None, _Step]:
        optimizer = self.optim_objs[p] = self._get_optim(p)
        clip = self.grad_clip[p] = self._get_grad_clip(p)
        name = get_param_store().param_name(p)
        state = self._state_waiting_to_be_consumed.pop(name, None) if name is not None else None
        if state is not None:
            _load_state_dict(optimizer, state)
        # A scheduler steps its optimizer here; the user steps the scheduler itself.
        step: _Step = optimizer.optimizer.step if is_scheduler(optimizer) else optimizer.step
        entry = self._steps[p] = (clip, step)
        return entry

    def get_state(self) -> dict[str | None, Any]:
        """The state dict of every optimizer created so far, by param name."""
        return {get_param_store().param_name(p): _state_dict(optim) for p, optim in self.optim_objs.items()}

    def set_state(self, state_dict: dict[str, Any]) -> None:
        """Queue states from :meth:`get_state`; each is loaded when its param is first stepped."""
        self._state_waiting_to_be_consumed.update(state_dict)

    def save(self, filename: str | os.PathLike[str]) -> None:
        """Write :meth:`get_state` to ``filename`` with :func:`torch.save`."""
        with open(filename, "wb") as output_file:
            torch.save(self.get_state(), output_file)

    def load(self, filename: str | os.PathLike[str], map_location: MAP_LOCATION = None) -> None:
        """Queue the state saved in ``filename`` (see :meth:`set_state`).

        :param map_location: passed to :func:`torch.load`, which runs with
            ``weights_only=False``: load only files you trust.
        """
        with open(filename, "rb") as input_file:
            state = torch.load(input_file, map_location=map_location, weights_only=False)
        self.set_state(state)

    def _get_optim(self, param: torch.Tensor) -> Any:
        return self.pt_optim_constructor([param], **self._get_optim_args(param))

    def _get_optim_args(self, param: torch.Tensor) -> dict[str, Any]:
        optim_args = self.pt_optim_args
        if not callable(optim_args):
            return optim_args
        name = get_param_store().param_name(param) or ""
        if self.pt_optim_args_argc == 1:
            args = optim_args(normalize_param_name(name))
        else:
            args = optim_args(module_from_param_with_module_name(name), user_param_name(name))
        if not isinstance(args, dict):
            raise AssertionError("per-param optim arg must return defaults dictionary")
        return args

    def _get_grad_clip(self, param: torch.Tensor) -> Callable[[torch.Tensor], None] | None:
        clip_args = self._get_grad_clip_args(param)
        if not clip_args:
            return None

        def clip(p: torch.Tensor) -> None:
            _clip_grad(p, **clip_args)

        return clip

    def _get_grad_clip_args(self, param: torch.Tensor) -> dict[str, Any]:
        clip_args = self.pt_clip_args
        if not callable(clip_args):
            return clip_args
        name = get_param_store().param_name(param) or ""
        args = clip_args(module_from_param_with_module_name(name), user_param_name(name))
        if not isinstance(args, dict):
            raise AssertionError("per-param clip arg must return defaults dictionary")
        return args


def AdagradRMSProp(optim_args: OptimArgs) -> PyroOptim:
    """Wrap :class:`ember.optim.adagrad_rmsprop.AdagradRMSProp` in a :class:`PyroOptim`."""
    return PyroOptim(_AdagradRMSPropOptimizer, optim_args)


def ClippedAdam(optim_args: OptimArgs) -> PyroOptim:
    """Wrap :class:`ember.optim.clipped_adam.ClippedAdam` in a :class:`PyroOptim`.

    >>> ClippedAdam({"lr": 0.01, "lrd": 0.999, "clip_norm": 5.0}).pt_optim_constructor.__name__
    'ClippedAdam'
    """
    return PyroOptim(_ClippedAdamOptimizer, optim_args)


def DCTAdam(optim_args: OptimArgs) -> PyroOptim:
    """Wrap :class:`ember.optim.dct_adam.DCTAdam` in a :class:`PyroOptim`."""
    return PyroOptim(_DCTAdamOptimizer, optim_args)

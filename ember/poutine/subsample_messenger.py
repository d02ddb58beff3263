"""``SubsampleMessenger``: an :class:`~ember.poutine.indep_messenger.IndepMessenger` that subsamples.

It also scales every message by ``size / subsample_size`` and, in step 3, subsamples
``param``/``subsample`` values that declare an ``event_dim``. It records its subsample
indices as a sample site named after the plate when it is constructed.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

from ember.distributions.distribution import Distribution
from ember.poutine.indep_messenger import IndepMessenger, _full_indices
from ember.poutine.message import CondIndepStackFrame, Message, new_message
from ember._util import ignore_jit_warnings
from ember.poutine.runtime import apply_stack, is_validation_enabled, value_error_like

__all__ = ["SubsampleMessenger", "check_plate_args"]


class _Subsample(Distribution):
    """The distribution of a plate's subsample indices; its log density is 0.

    The class name is part of the protocol: ``site_is_subsample`` recognises it by name.
    """

    def __init__(
        self,
        size: int,
        subsample_size: int | None,
        use_cuda: bool | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.size = size
        self.subsample_size = subsample_size
        self.use_cuda = use_cuda
        if use_cuda is not None and use_cuda ^ (device != "cpu"):
            raise ValueError(f"Incompatible arg values use_cuda={use_cuda}, device={device}.")
        self.device = torch.device(device) if device is not None else torch.get_default_device()

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        if sample_shape:
            raise NotImplementedError
        size, subsample_size = self.size, self.subsample_size
        if subsample_size is None or subsample_size >= size:
            result = _full_indices(size, self.device)
        else:
            result = torch.randperm(size, device=self.device)[:subsample_size].clone()
        return result.cuda() if self.use_cuda else result

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.sample(*args, **kwargs)

    def log_prob(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = torch.tensor(0.0, device=self.device)
        return result.cuda() if self.use_cuda else result


def _is_integer(value: object) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.is_floating_point() and not value.is_complex()
    return isinstance(value, numbers.Integral)


def check_plate_args(
    name: str, size: object, subsample_size: object = None, subsample: object = None
) -> None:
    """Reject a plate's bad size, subsample size or subsample indices, naming the plate.

    Beyond Pyro, which accepts ``size=2.5``, a ``subsample_size`` above ``size`` (then
    scaling by the wrong factor) and out-of-range indices for sample sites, or fails later
    with a raw error. Each error is a ``ValueError``, and also of the type Pyro raises for
    that input where it raises at all (see
    :func:`~ember.poutine.runtime.value_error_like`). Skipped while the JIT traces, when
    sizes may be tensors.

    :raises ValueError: for a non-integer, zero or negative ``size`` or ``subsample_size``, a
        ``subsample_size`` above ``size``, or subsample indices outside ``[0, size)``.
    """
    if size is None or torch._C._get_tracing_state():
        return
    if not _is_integer(size):
        raise ValueError(f"plate {name!r}: size must be a positive integer, got {size!r}")
    full = int(size)  # type: ignore[call-overload]  # an Integral or an integer 0-dim tensor, checked above
    if full == 0:
        raise value_error_like(ZeroDivisionError, f"size cannot be zero (plate {name!r})")
    if full < 0:
        raise value_error_like(RuntimeError, f"plate {name!r}: size must be positive, got {full}")
    if subsample_size is not None:
        if not _is_integer(subsample_size):
            raise ValueError(f"plate {name!r}: subsample_size must be a positive integer, got {subsample_size!r}")
        count = int(subsample_size)  # type: ignore[call-overload]  # checked above
        if count == 0:
            raise value_error_like(ZeroDivisionError, f"plate {name!r}: subsample_size cannot be zero")
        if not 0 < count <= full:
            raise ValueError(f"plate {name!r}: subsample_size must be in 1..size={full}, got {count}")
    if isinstance(subsample, torch.Tensor) and subsample.numel():
        low, high = int(subsample.min()), int(subsample.max())
        if low < 0 or high >= full:
            bad = subsample[(subsample < 0) | (subsample >= full)]
            raise value_error_like(
                IndexError,
                f"plate {name!r} of size {full}: subsample index out of range [0, {full}): "
                f"{bad.tolist()[:10]} (subsample shape {tuple(subsample.shape)})",
            )


class SubsampleMessenger(IndepMessenger):
    """An independence context that may subsample its elements and rescales log densities.

    :param name: the plate name (also the name of its subsample site).
    :param size: the full size, or ``None`` for a plate of unknown size.
    :param subsample_size: how many indices to draw at random.
    :param subsample: explicit indices to use.
    :param dim: a negative dim, or ``None`` to allocate one.
    :param use_cuda: deprecated; use ``device``.
    :param device: where the indices live.
    """

    def __init__(
        self,
        name: str,
        size: int | None = None,
        subsample_size: int | None = None,
        subsample: torch.Tensor | None = None,
        dim: int | None = None,
        use_cuda: bool | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if is_validation_enabled():
            check_plate_args(name, size, subsample_size, subsample)
        # Under the JIT the sizes are traced tensors; comparing them is constant per graph.
        with ignore_jit_warnings():
            full_size, self.subsample_size, indices = self._subsample(
                name, size, subsample_size, subsample, use_cuda, device
            )
            self._rescales = bool(full_size != self.subsample_size)
        super().__init__(name, full_size, dim, device)
        self._indices = indices

    @staticmethod
    def _subsample(
        name: str,
        size: int | None,
        subsample_size: int | None,
        subsample: torch.Tensor | None,
        use_cuda: bool | None,
        device: str | torch.device | None,
    ) -> tuple[int, int, torch.Tensor | None]:
        if size is None:
            assert subsample_size is None and subsample is None
            return -1, -1, None
        msg = new_message("sample", name, _Subsample(size, subsample_size, use_cuda, device), value=subsample)
        apply_stack(msg)
        subsample = msg["value"]
        if subsample_size is None:
            assert subsample is not None
            subsample_size = subsample.size(0) if isinstance(subsample, torch.Tensor) else len(subsample)
        elif subsample is not None and subsample_size != len(subsample):
            raise ValueError(
                f"subsample_size does not match len(subsample), {subsample_size} vs {len(subsample)}."
                " Did you accidentally use different subsample_size in the model and guide?"
            )
        return size, subsample_size, subsample

    def _reset(self) -> None:
        self._indices = None
        super()._reset()

    _frame_cache: CondIndepStackFrame | None = None

    def _process_message(self, msg: Message) -> None:
        # Frames are immutable; one serves every message until the dim or counter changes.
        frame = self._frame_cache
        if frame is None or frame.dim != self.dim or frame.counter != self.counter:
            frame = self._frame_cache = CondIndepStackFrame(
                self.name, self.dim, self.subsample_size, self.counter, self.size
            )
        msg["cond_indep_stack"] = (frame, *msg["cond_indep_stack"])
        if self._rescales:
            # Under the JIT the sizes are tensors, and so is the product.
            msg["scale"] = msg["scale"] * self.size / self.subsample_size

    def _postprocess_message(self, msg: Message) -> None:
        if msg["type"] not in ("param", "subsample") or self.dim is None:
            return
        event_dim = msg["kwargs"].get("event_dim")
        if event_dim is None:
            return
        assert event_dim >= 0
        dim = self.dim - event_dim
        value = msg["value"]
        shape = value.shape
        if len(shape) < -dim or shape[dim] == 1:
            return
        if is_validation_enabled() and shape[dim] != self.size:
            statement = (
                f"pyro.param({msg['name']}, ..., event_dim={event_dim})"
                if msg["type"] == "param"
                else f"pyro.subsample(..., event_dim={event_dim})"
            )
            raise ValueError(
                f"Inside pyro.plate({self.name}, {self.size}, dim={self.dim}) invalid shape of {statement}: {shape}"
            )
        if self.subsample_size < self.size:
            assert self._indices is not None
            new_value = value.index_select(dim, self._indices.to(value.device))
            if msg["type"] == "param":
                param = getattr(value, "_pyro_unconstrained_param", None)
                if param is None:
                    param = value.unconstrained()
                if not hasattr(param, "_pyro_subsample"):
                    param._pyro_subsample = {}
                param._pyro_subsample[dim] = self._indices
                new_value._pyro_unconstrained_param = param  # links the slice to its leaf, as Pyro
            msg["value"] = new_value

"""The autoguide base class, and the two containers: :class:`AutoGuideList` and :class:`AutoCallable`.

An autoguide learns the structure of its model from a *prototype trace*: on its first call
it runs the model once, hidden from every outer handler, and records the latent sample
sites (their distributions, values and plates). Parameters are created from that trace and
live in the guide, a :class:`~ember.nn.PyroModule`, under names such as
``"AutoNormal.locs.x"``.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable, cast

import torch

from ember.nn.module import PyroModule
from ember.poutine.handlers import block, trace
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember.primitives import plate
from ember._util import warn_at_caller

__all__ = ["AutoCallable", "AutoGuide", "AutoGuideList", "prototype_hide_fn"]

PlatesFn = Callable[..., "plate | Iterable[plate]"]


def prototype_hide_fn(msg: Message) -> bool:
    """Hide every site but the latent, non-subsample sample sites from the prototype trace."""
    return msg["type"] != "sample" or msg["is_observed"] or site_is_subsample(msg)


class AutoGuide(PyroModule):
    """Base class of the automatic guides; subclasses implement ``forward``.

    A guide is called with the model's arguments and returns a dict from latent site name
    to sampled value. Guides can be combined in an :class:`AutoGuideList`.

    :param model: the model.
    :param create_plates: a function of the model's arguments returning the plate (or plates)
        to use for some of the model's plates, e.g. to subsample them; plates it does not
        return are built from the prototype trace.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> from ember.infer.autoguide import AutoNormal
    >>> def model():
    ...     ember.sample("x", dist.Normal(0.0, 1.0))
    >>> guide = AutoNormal(model)
    >>> sorted(guide())
    ['x']
    """

    _prototype_hide_fn = staticmethod(prototype_hide_fn)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Run the guide with the model's arguments; the sampled latent values by site name."""
        result: dict[str, torch.Tensor] = super().__call__(*args, **kwargs)
        return result

    def __init__(self, model: Callable[..., Any], *, create_plates: PlatesFn | None = None) -> None:
        super().__init__(name=type(self).__name__)
        self.master: weakref.ref[AutoGuide] | None = None
        self._model: tuple[Callable[..., Any]] | None = (model,)  # a tuple: never a submodule
        self.create_plates = create_plates
        self.prototype_trace: Trace | None = None
        self._prototype_frames: dict[str, CondIndepStackFrame] = {}
        self.plates: dict[str, plate] = {}

    @property
    def model(self) -> Callable[..., Any]:
        """The model (unavailable after unpickling, as in Pyro).

        :raises TypeError: on a guide loaded from a pickle.
        """
        if self._model is None:
            raise TypeError(f"{type(self).__name__}.model is not kept when a guide is pickled")
        return self._model[0]

    def __getstate__(self) -> dict[str, Any]:
        # The model may not pickle and the weak reference cannot; leave both out, but unlike
        # Pyro do not clear them on the live guide.
        state = dict(super().__getstate__())
        state["_model"] = None
        state["master"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        master_ref = weakref.ref(self)
        for _, mod in self.named_modules():
            if mod is not self and isinstance(mod, AutoGuide):
                mod._update_master(master_ref)

    def _update_master(self, master_ref: weakref.ref[AutoGuide]) -> None:
        self.master = master_ref
        for _, mod in self.named_modules():
            if mod is not self and isinstance(mod, AutoGuide):
                mod._update_master(master_ref)

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call the guide and return its values as a tuple sorted by site name (for the JIT)."""
        result = self(*args, **kwargs)
        return tuple(value for _, value in sorted(result.items()))

    def sample_latent(self, *args: Any, **kwargs: Any) -> Any:
        """Sample an encoded latent, given the model's arguments (guides that have one)."""
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, AutoGuide):
            master_ref = weakref.ref(self) if self.master is None else self.master
            value._update_master(master_ref)
        super().__setattr__(name, value)

    def _create_plates(self, *args: Any, **kwargs: Any) -> dict[str, plate]:
        master = self.master
        if master is not None:
            assert self.create_plates is None, "Cannot pass create_plates() to non-master guide"
            root = master()
            assert root is not None
            self.plates = root.plates
            return self.plates
        plates: dict[str, plate] = {}
        if self.create_plates is not None:
            created = self.create_plates(*args, **kwargs)
            listed = [created] if isinstance(created, plate) else list(created)
            assert all(isinstance(p, plate) for p in listed), "create_plates() returned a non-plate"
            plates = {p.name: p for p in listed}
        for name, frame in sorted(self._prototype_frames.items()):
            if name not in plates:
                full_size = frame.full_size or frame.size
                plates[name] = plate(
                    name, full_size, dim=frame.dim, subsample_size=frame.size, device=self._plate_device(name)
                )
        self.plates = plates
        return plates

    def _plate_device(self, name: str) -> torch.device | None:
        """The device of the model's values inside plate ``name``: the guide's plate indices go there."""
        return getattr(self, "_prototype_plate_devices", {}).get(name)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        hidden_model = block(self.model, self._prototype_hide_fn)
        self.prototype_trace = block(trace(hidden_model).get_trace)(*args, **kwargs)
        if self.master is not None:
            root = self.master()
            assert root is not None
            root._check_prototype(self.prototype_trace)
        self._prototype_frames = {}
        self._prototype_plate_devices: dict[str, torch.device] = {}
        for _, site in self.prototype_trace.iter_stochastic_nodes():
            value = site["value"]
            for frame in site["cond_indep_stack"]:
                if not frame.vectorized:
                    raise NotImplementedError("AutoGuide does not support sequential pyro.plate")
                self._prototype_frames[frame.name] = frame
                if isinstance(value, torch.Tensor):
                    self._prototype_plate_devices.setdefault(frame.name, value.device)

    def _check_prototype(self, part_trace: Trace) -> None:
        pass

    def _latent_sites(self) -> Iterable[tuple[str, Message]]:
        assert self.prototype_trace is not None, "call the guide once before asking for its posterior"
        return self.prototype_trace.iter_stochastic_nodes()

    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The posterior median of each latent site, by name."""
        raise NotImplementedError


class AutoGuideList(AutoGuide, torch.nn.ModuleList):
    """A guide made of parts, each a guide for some of the model's latent sites.

    Parts are usually autoguides of the model under ``poutine.block``; a plain callable is
    wrapped in an :class:`AutoCallable`. All parts share the list's plates.

    :param model: the model.
    :param create_plates: as for :class:`AutoGuide`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> from ember import poutine
    >>> from ember.infer.autoguide import AutoDelta, AutoNormal
    >>> def model():
    ...     ember.sample("a", dist.Normal(0.0, 1.0))
    ...     ember.sample("b", dist.Normal(0.0, 1.0))
    >>> guide = AutoGuideList(model)
    >>> guide.append(AutoDelta(poutine.block(model, expose=["a"])))
    >>> guide.append(AutoNormal(poutine.block(model, hide=["a"])))
    >>> sorted(guide())
    ['a', 'b']
    """

    def _check_prototype(self, part_trace: Trace) -> None:
        assert self.prototype_trace is not None
        for name, part_site in part_trace.iter_stochastic_nodes():
            self_site = self.prototype_trace.nodes[name]
            part_fn: Any = part_site["fn"]
            self_fn: Any = self_site["fn"]
            assert part_fn.batch_shape == self_fn.batch_shape
            assert part_fn.event_shape == self_fn.event_shape
            assert part_site["value"].shape == self_site["value"].shape

    def append(self, part: Any) -> None:  # type: ignore[override]  # Pyro's contract: callables are wrapped, nothing returned
        """Add a guide for some of the model's sites; no two parts may share a site.

        :param part: an :class:`AutoGuide`, or a callable guide (wrapped in :class:`AutoCallable`).
        :raises RuntimeError: if ``part`` already belongs to a guide list.
        """
        if not isinstance(part, AutoGuide):
            part = AutoCallable(self.model, part)
        if part.master is not None:
            raise RuntimeError(f"The module `{self._pyro_name}` is already added.")
        setattr(self, str(len(self)), part)

    def add(self, part: Any) -> None:
        """Deprecated: use :meth:`append`."""
        warn_at_caller("The method `.add` has been deprecated in favor of `.append`.", DeprecationWarning)
        self.append(part)

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Run every part with the model's arguments; their values by site name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        self._create_plates(*args, **kwargs)
        result: dict[str, torch.Tensor] = {}
        for part in self._parts():
            result.update(part(*args, **kwargs))
        return result

    def _parts(self) -> list[AutoGuide]:
        return [cast(AutoGuide, part) for part in self._modules.values()]

    def median(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The parts' posterior medians, by site name."""
        result: dict[str, torch.Tensor] = {}
        for part in self._parts():
            result.update(part.median(*args, **kwargs))
        return result

    def quantiles(self, quantiles: Any, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The parts' posterior quantiles, by site name.

        :param quantiles: the probabilities, each between 0 and 1.
        """
        result: dict[str, torch.Tensor] = {}
        for part in self._parts():
            result.update(part.quantiles(quantiles, *args, **kwargs))
        return result


def _no_median(*args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
    return {}


class AutoCallable(AutoGuide):
    """An :class:`AutoGuide` around a plain guide function, for use in an :class:`AutoGuideList`.

    :param model: the model.
    :param guide: the guide function (usually for part of the model).
    :param median: a function of the model's arguments returning medians by site name.

    >>> guide = AutoCallable(lambda: None, lambda: {"x": torch.zeros(())})
    >>> guide(), guide.median()
    ({'x': tensor(0.)}, {})
    """

    def __init__(
        self,
        model: Callable[..., Any],
        guide: Callable[..., Any],
        median: Callable[..., dict[str, torch.Tensor]] = _no_median,
    ) -> None:
        super().__init__(model)
        self._guide = guide
        self.median = median  # type: ignore[method-assign]  # Pyro's contract: an instance attribute replaces the method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped guide; ``None`` becomes ``{}``."""
        result = self._guide(*args, **kwargs)
        return {} if result is None else result

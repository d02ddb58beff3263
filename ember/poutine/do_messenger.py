"""``do``: intervene on sample sites, splitting each into a fresh site and a fixed value.

Changes step 1 of ``sample`` messages named in ``data``. Before the message goes on, a copy
of it (with ``cond_indep_stack=()``, so enclosing plates add their frames only once) is sent
through the whole handler stack under the original name, so that handlers see a fresh,
ordinary site. The original message is then renamed ``<name>__CF``, given the intervention
as an observed value, and stopped: messengers outside ``do`` never see it, while the program
continues with the intervened value.

Beyond Pyro: with validation on, a use that ends normally without reaching some names in
``data`` (with a value other than ``None``) warns once, listing them.
"""

from __future__ import annotations

import numbers
from typing import Mapping

import torch
from typing_extensions import Self

from ember.poutine.message import Message
from ember.poutine.runtime import apply_stack
from ember.poutine.util import _warn_unused, _WarnsUnreached
from ember._util import warn_at_caller

__all__ = ["DoMessenger"]


def _as_tensor(name: str, intervention: object) -> torch.Tensor:
    if isinstance(intervention, torch.Tensor):
        return intervention
    if isinstance(intervention, numbers.Real):
        # Deliberately unlike Pyro (which gives an int64 tensor for an int): a real number
        # becomes a float tensor, so continuous distributions downstream can use it.
        return torch.tensor(float(intervention), dtype=torch.get_default_dtype())
    if isinstance(intervention, numbers.Number):
        return torch.tensor(intervention)
    raise NotImplementedError(
        f"Interventions of type {type(intervention)} not implemented (yet) at site '{name}'"
    )


class DoMessenger(_WarnsUnreached):
    """Intervene on sample sites, as if their values were hard-coded.

    Each site named in ``data`` is split in two: a fresh sample site with the original name,
    whose value nothing downstream uses, and the site ``<name>__CF`` holding the intervened
    value, which the program continues with and which only messengers inside ``do`` see.
    Combined with :class:`~ember.poutine.condition_messenger.ConditionMessenger` this
    expresses counterfactual queries (single world intervention graphs).

    A Python real number becomes a tensor of :func:`torch.get_default_dtype` (Pyro would make
    an ``int`` an int64 tensor). A ``None`` value leaves the site alone; any other value that
    is neither a tensor nor a number raises ``NotImplementedError`` before anything is
    sampled. Splitting a site another ``do`` already split warns, as in Pyro, and (unlike
    Pyro, which recurses without end) splits it just once more.

    :param data: the intervened values (tensors or numbers), by site name.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.poutine.trace_messenger import TraceMessenger
    >>> def model():
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    ...     return ember.sample("y", dist.Normal(z, 1.0))
    >>> with TraceMessenger() as tracer, DoMessenger(data={"z": 5}):
    ...     y = model()
    >>> tracer.trace.nodes["y"]["fn"].loc, "z__CF" in tracer.trace
    (tensor(5.), False)
    """

    _copy_per_call = True

    def __init__(self, data: Mapping[str, torch.Tensor | float | None]) -> None:
        super().__init__()
        self.data = data
        # Sites whose fresh copy this messenger is sending through the stack right now.
        self._splitting: set[str] = set()

    def _copy_for_call(self) -> Self:
        clone = super()._copy_for_call()
        clone._splitting = set()
        return clone

    def _report_unreached(self) -> None:
        wanted = {name for name, value in self.data.items() if value is not None}
        _warn_unused("do", "data", wanted - self._reached)

    @property
    def _intervener_id(self) -> str:
        # Derived from the live object (not stored), so an unpickled copy gets its own id.
        return str(id(self))

    def _pyro_sample(self, msg: Message) -> None:
        name = msg["name"]
        assert isinstance(name, str)
        my_id = self._intervener_id
        previous_id = msg.get("_intervener_id")
        if previous_id == my_id or name in self._splitting:
            return
        intervention = self.data.get(name)
        if intervention is None:
            return
        self._reached.add(name)
        value = _as_tensor(name, intervention)
        if previous_id is not None:
            # The text (missing space included) is Pyro's.
            warn_at_caller(
                f"Attempting to intervene on variable {name} multiple times,"
                "this is almost certainly incorrect behavior",
                RuntimeWarning,
            )
        msg["_intervener_id"] = my_id

        fresh = msg.copy()
        fresh["cond_indep_stack"] = ()
        # Pyro recurses forever when two ``do``s share a site (each re-splits the other's
        # copy); remembering the site being split here ends that after one split each.
        self._splitting.add(name)
        try:
            apply_stack(fresh)
        finally:
            self._splitting.discard(name)

        msg["name"] = name + "__CF"
        msg["value"] = value
        msg["is_observed"] = True
        msg["stop"] = True

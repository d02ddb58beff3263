"""Building blocks shared by Ember's distribution classes.

:class:`TypedTorchMethods` exists mostly for static checkers. Many ``torch.distributions``
classes define ``sample``, ``log_prob`` or ``expand`` without annotations, so under
``mypy --strict`` every call to them is an untyped call returning ``Any``. Ember's classes list
:class:`TypedTorchMethods` first among their bases: checkers find its annotated declarations
before torch's unannotated ones, while at runtime every lookup but one falls through to
torch's implementation. The one runtime member is ``_validate_sample``, which skips the
support check for the value the distribution itself last drew (see
:meth:`~ember.distributions._protocol.DistributionProtocol.__call__`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import torch
from torch.types import _size

__all__ = ["DelegatedRsample", "TypedTorchMethods", "new_instance"]

_D = TypeVar("_D", bound=torch.distributions.Distribution)


def new_instance(dist: _D, cls: type[torch.distributions.Distribution], instance: _D | None) -> _D:
    """Allocate the result of ``dist.expand``, as torch's ``_get_checked_instance`` does.

    :param dist: the distribution being expanded.
    :param cls: the class whose ``expand`` is running.
    :param instance: the instance a subclass's ``expand`` already allocated, if any.
    :raises NotImplementedError: if ``type(dist)`` overrides ``__init__`` but not ``expand``.
    """
    # torch leaves _get_checked_instance unannotated
    return dist._get_checked_instance(cls, instance)  # type: ignore[no-untyped-call, no-any-return]


class _ExpandFamily:
    """Gives a private base's shared ``expand`` the public class it runs for, ``_family``.

    The public class lists ``family=True`` among its class keywords; it and its subclasses
    then name it, as each class's own ``expand`` names itself in :func:`new_instance`
    (torch's check that a subclass overriding ``__init__`` overrides ``expand`` too).
    List this class first among the bases.
    """

    _family: ClassVar[type[Any]]

    def __init_subclass__(cls, family: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if family:
            cls._family = cls


class DelegatedRsample:
    """A ``has_rsample`` that follows ``base_dist`` but can be overridden by ``has_rsample_``.

    Torch makes ``has_rsample`` a read-only property on wrappers such as
    :class:`~torch.distributions.TransformedDistribution`, so ``has_rsample_`` could not set it.
    List this class before the torch class among the bases.
    """

    base_dist: Any
    _has_rsample: bool | None = None

    @property
    def has_rsample(self) -> bool:
        """The base distribution's ``has_rsample``, unless overridden by ``has_rsample_``."""
        if self._has_rsample is None:
            return bool(self.base_dist.has_rsample)
        return self._has_rsample

    @has_rsample.setter
    def has_rsample(self, value: bool) -> None:
        self._has_rsample = value


class TypedTorchMethods:
    """Annotated view of :class:`torch.distributions.Distribution` methods.

    At runtime it only adds ``_validate_sample``'s shortcut for self-drawn values.
    """

    def _validate_sample(self, value: torch.Tensor) -> None:
        # A value this distribution drew itself is in its support by construction. Scoring
        # it again (``trace.log_prob_sum()``, a guide's own sites in an ELBO) would re-run
        # the support check, about a third of ``Normal.log_prob`` (bench/overhead.py).
        if value is self.__dict__.get("_ember_drawn"):
            return
        torch.distributions.Distribution._validate_sample(self, value)  # type: ignore[arg-type]  # self is a torch Distribution in every subclass

    if TYPE_CHECKING:

        def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
            raise NotImplementedError

        def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
            raise NotImplementedError

        def log_prob(self, value: torch.Tensor) -> torch.Tensor:
            raise NotImplementedError

        def cdf(self, value: torch.Tensor) -> torch.Tensor:
            raise NotImplementedError

        def icdf(self, value: torch.Tensor) -> torch.Tensor:
            raise NotImplementedError

        def entropy(self) -> torch.Tensor:
            raise NotImplementedError

        def enumerate_support(self, expand: bool = True) -> torch.Tensor:
            raise NotImplementedError

        def expand(self, batch_shape: _size, _instance: Any = None) -> Self:
            raise NotImplementedError

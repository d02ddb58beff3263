"""``substitute``: use given values for param sites.

Changes step 1 of ``param`` messages whose user-facing name (module prefix stripped) is in
``data``: the value is set, so the param store is not read. Sample sites are untouched.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from typing_extensions import Self

from ember.params import user_param_name
from ember.poutine.message import Message
from ember.poutine.messenger import Messenger
from ember.poutine.runtime import is_validation_enabled
from ember._util import warn_at_caller

__all__ = ["SubstituteMessenger"]


class SubstituteMessenger(Messenger):
    """Substitute param values.

    :param data: values by param name.

    >>> import ember, torch
    >>> with SubstituteMessenger(data={"w": torch.tensor(3.0)}):
    ...     w = ember.param("w", torch.tensor(0.0))
    >>> w
    tensor(3.)
    """

    _copy_per_call = True  # per-run state: each call of a wrapped function gets a copy

    def __init__(self, data: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.data = data
        self._data_cache: dict[str, Message] = {}
        self._param_hits: set[str] = set()
        self._param_misses: set[str] = set()

    def __enter__(self) -> Self:
        self._data_cache = {}
        self._param_hits = set()
        self._param_misses = set()
        return super().__enter__()

    def __exit__(self, *args: Any) -> None:
        self._data_cache = {}
        if is_validation_enabled() and isinstance(self.data, dict):
            extra = set(self.data) - self._param_hits
            if extra:
                warn_at_caller(
                    "pyro.module data did not find params ['{}']. Did you instead mean one of ['{}']?".format(
                        "', '".join(sorted(extra)), "', '".join(sorted(self._param_misses))
                    )
                )
        super().__exit__(*args)

    def _pyro_param(self, msg: Message) -> None:
        name = msg["name"] or ""
        param_name = user_param_name(name)
        if param_name not in self.data:
            self._param_misses.add(param_name)
            return
        self._param_hits.add(param_name)
        cached = self._data_cache.get(name)
        if cached is not None:
            msg["value"] = cached["value"]
        else:
            msg["value"] = self.data[param_name]
            self._data_cache[name] = msg

"""Parameter storage: :class:`ParamStoreDict` and the ``"$$$"`` module-name helpers."""

from .param_store import (
    ParamStoreDict as ParamStoreDict,
    module_from_param_with_module_name as module_from_param_with_module_name,
    param_with_module_name as param_with_module_name,
    user_param_name as user_param_name,
)

__all__ = [
    "ParamStoreDict",
    "module_from_param_with_module_name",
    "param_with_module_name",
    "user_param_name",
]

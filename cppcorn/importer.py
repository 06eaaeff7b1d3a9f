"""Resolve `module:attribute` strings (the APP argument, custom loops)."""

from __future__ import annotations

import importlib
from typing import Any


class ImportFromStringError(Exception):
    pass


def import_from_string(import_str: Any) -> Any:
    """Import `"package.module:attr.sub"` and return the attribute.

    Anything that is not a string is returned unchanged, so callers can pass
    either an import string or the object itself. Errors name the part that
    failed, in the words Uvicorn uses, because users grep for them.
    """
    if not isinstance(import_str, str):
        return import_str

    module_name, _, attribute_path = import_str.partition(":")
    if not module_name or not attribute_path:
        raise ImportFromStringError(f'Import string "{import_str}" must be in format "<module>:<attribute>".')

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            # The module exists but something it imports does not: that is
            # the application's own error, with its own traceback.
            raise exc from None
        raise ImportFromStringError(f'Could not import module "{module_name}".') from None

    instance: Any = module
    try:
        for attribute in attribute_path.split("."):
            instance = getattr(instance, attribute)
    except AttributeError:
        raise ImportFromStringError(
            f'Attribute "{attribute_path}" not found in module "{module_name}".'
        ) from None
    return instance

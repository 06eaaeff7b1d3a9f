"""cppcorn: a fast ASGI server with a compiled HTTP/1.1 core, a drop-in for Uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cppcorn.loggers import install_aliases

__version__ = "0.1.0"
__all__ = ["Config", "Server", "__version__", "main", "run"]

if TYPE_CHECKING:
    from cppcorn.config import Config
    from cppcorn.main import main, run
    from cppcorn.server import Server

# The public names are loaded on first use, so that importing a submodule
# (the compiled protocol, or later the event loop) does not pull in the
# command line and configuration machinery.
# The server logs on Uvicorn's logger names; cppcorn's are aliases of them,
# in place before any program that imports cppcorn configures either.
install_aliases()

_LAZY = {"Config": "cppcorn.config", "Server": "cppcorn.server", "main": "cppcorn.main", "run": "cppcorn.main"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'cppcorn' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value

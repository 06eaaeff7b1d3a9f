"""The loggers the server writes to: Uvicorn's, with cppcorn's names as aliases.

Records are emitted on Uvicorn's logger names (``uvicorn.error``,
``uvicorn.access``, ``uvicorn.asgi``, under ``uvicorn``), because
deployments written for Uvicorn configure those in code and route records on
those names. ``cppcorn``, ``cppcorn.error``, ``cppcorn.access`` and
``cppcorn.asgi`` keep working for those who configure them: each is an
:class:`AliasLogger` registered under that name, whose handlers, filters,
level and propagation *are* its Uvicorn twin's. A filter added to
``logging.getLogger("uvicorn.access")`` filters the access log; a handler
added to ``cppcorn.error`` receives the server's messages.

Only ``disabled`` is the alias's own: ``dictConfig(disable_existing_loggers=True)``
disables every logger it does not name, and a config naming ``uvicorn.access``
must not silence the access log through its ``cppcorn.access`` alias.
"""

from __future__ import annotations

import logging
from typing import Any

ALIASES = {
    "cppcorn": "uvicorn",
    "cppcorn.error": "uvicorn.error",
    "cppcorn.access": "uvicorn.access",
    "cppcorn.asgi": "uvicorn.asgi",
}


def _shared(attribute: str) -> property:
    """A property that reads and writes the target logger's attribute."""

    def get(alias: AliasLogger) -> Any:
        return getattr(alias.target, attribute)

    def set_(alias: AliasLogger, value: Any) -> None:
        setattr(alias.target, attribute, value)

    return property(get, set_)


class AliasLogger(logging.Logger):
    """Another name for ``target``: configuring one configures the other.

    Records logged through the alias keep the alias's name and are handled
    by the target's filters and handlers.
    """

    handlers = _shared("handlers")
    filters = _shared("filters")
    level = _shared("level")
    propagate = _shared("propagate")

    def __init__(self, name: str, target: logging.Logger) -> None:
        # Not Logger.__init__: it would reset the target's handlers, filters
        # and level through the shared properties.
        self.name = name
        self.target = target
        self.disabled = False
        self._cache: dict[int, bool] = {}

    @property  # type: ignore[override]
    def parent(self) -> logging.Logger | None:
        # Children of the alias (cppcorn.error.x) propagate as children of
        # the target would.
        return self.target.parent

    def getEffectiveLevel(self) -> int:
        return self.target.getEffectiveLevel()

    def isEnabledFor(self, level: int) -> bool:
        return not self.disabled and self.target.isEnabledFor(level)

    def handle(self, record: logging.LogRecord) -> None:
        if not self.disabled:
            self.target.handle(record)


def install_aliases() -> None:
    """Register the cppcorn logger names as aliases of Uvicorn's.

    A cppcorn logger that a program created before importing cppcorn hands
    its configuration to the target and its children to the alias.
    """
    manager = logging.Logger.manager
    for alias_name, target_name in ALIASES.items():
        existing = manager.loggerDict.get(alias_name)
        if isinstance(existing, AliasLogger):
            continue
        target = logging.getLogger(target_name)
        alias = AliasLogger(alias_name, target)
        if isinstance(existing, logging.Logger):
            _hand_over(existing, target)
            children = [
                logger for logger in manager.loggerDict.values()
                if isinstance(logger, logging.Logger) and logger.parent is existing
            ]
        elif isinstance(existing, logging.PlaceHolder):
            # Loggers below a name nobody asked for yet: their parent is the
            # nearest ancestor that existed when they were made.
            children = [
                logger for logger in existing.loggerMap
                if not logger.parent.name.startswith(alias_name + ".")
            ]
        else:
            children = []
        manager.loggerDict[alias_name] = alias
        for child in children:
            child.parent = alias
        if children:
            # Their cached level decisions were made along the old parents.
            manager._clear_cache()


def _hand_over(old: logging.Logger, target: logging.Logger) -> None:
    for handler in old.handlers:
        target.addHandler(handler)
    for log_filter in old.filters:
        target.addFilter(log_filter)
    if old.level != logging.NOTSET:
        target.setLevel(old.level)
    if not old.propagate:
        target.propagate = False

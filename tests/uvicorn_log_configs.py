"""Log configs as a Uvicorn user writes them: Uvicorn's logger names
(`uvicorn`, `uvicorn.error`, `uvicorn.access`) and `uvicorn.logging`
formatters, as a `dictConfig` dict (or JSON, or YAML) and as a `fileConfig`
INI file. cppcorn logs on these loggers too.

Both put server lines on stderr with the format `fmt` and access lines on
stdout with `access_fmt`, at the given levels.
"""

from __future__ import annotations

from typing import Any


def uvicorn_log_config(
    fmt: str, access_fmt: str, *, level: str = "INFO", error_level: str = "INFO", access_level: str = "INFO"
) -> dict[str, Any]:
    """Uvicorn's own LOGGING_CONFIG layout, with these formats and levels."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": fmt},
            "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": access_fmt},
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": error_level},
            "uvicorn.access": {"handlers": ["access"], "level": access_level, "propagate": False},
        },
    }


def uvicorn_log_ini(
    fmt: str,
    access_fmt: str,
    *,
    root_level: str = "WARNING",
    level: str = "INFO",
    error_level: str = "INFO",
    access_level: str = "INFO",
) -> str:
    """The same in fileConfig's INI format, with a root logger at `root_level`."""
    return f"""\
[loggers]
keys=root,uvicorn,uvicorn_error,uvicorn_access

[handlers]
keys=default,access

[formatters]
keys=default,access

[logger_root]
level={root_level}
handlers=

[logger_uvicorn]
level={level}
handlers=default
propagate=0
qualname=uvicorn

[logger_uvicorn_error]
level={error_level}
handlers=
qualname=uvicorn.error

[logger_uvicorn_access]
level={access_level}
handlers=access
propagate=0
qualname=uvicorn.access

[handler_default]
class=logging.StreamHandler
formatter=default
args=(sys.stderr,)

[handler_access]
class=logging.StreamHandler
formatter=access
args=(sys.stdout,)

[formatter_default]
class=uvicorn.logging.DefaultFormatter
format={fmt}

[formatter_access]
class=uvicorn.logging.AccessFormatter
format={access_fmt}
"""

"""Logging configuration, as Uvicorn's ``Config.configure_logging`` does it.

The server logs on Uvicorn's loggers (see ``cppcorn.loggers``), so log
configs written for Uvicorn apply as they are. Two translations make other
configs work too, on a copy for dict, JSON and YAML configs and in place for
INI ones (parsed as ``fileConfig`` does; a ``RawConfigParser`` passed in is
edited in place):

- ``uvicorn.logging.<Name>`` formatter or handler classes become
  ``cppcorn.logging.<Name>``, so Uvicorn need not be installed;
- a logger configured by a ``cppcorn`` / ``cppcorn.<x>`` name is configured
  by its Uvicorn name (``uvicorn`` / ``uvicorn.<x>``; where a config names
  both, the cppcorn entry wins). The aliases would apply it anyway, but
  ``disable_existing_loggers`` disables every *name* a config leaves out,
  which would take the Uvicorn logger down behind its alias.
"""

from __future__ import annotations

import configparser
import json
import logging
import logging.config
import os
from typing import IO, Any

from cppcorn.logging import TRACE_LOG_LEVEL

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "cppcorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "cppcorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def configure_logging(
    log_config: dict[str, Any] | str | os.PathLike[str] | configparser.RawConfigParser | IO[str] | None,
    log_level: str | int | None = None,
    access_log: bool = True,
    use_colors: bool | None = None,
) -> None:
    """Apply ``log_config`` (if any), then the ``log_level`` and ``access_log`` overrides."""
    logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")

    if isinstance(log_config, os.PathLike):
        log_config = os.fspath(log_config)
    if isinstance(log_config, dict):
        config = _translate_dict(log_config)
        formatters = config.get("formatters", {})
        if use_colors in (True, False):
            for name in ("default", "access"):
                if name in formatters:
                    formatters[name]["use_colors"] = use_colors
        logging.config.dictConfig(config)
    elif isinstance(log_config, str) and log_config.endswith(".json"):
        with open(log_config) as file:
            logging.config.dictConfig(_translate_dict(json.load(file)))
    elif isinstance(log_config, str) and log_config.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as exc:
            raise ImportError(
                "Install the PyYAML package or cppcorn[standard] to use `--log-config` with YAML files."
            ) from exc
        with open(log_config) as file:
            logging.config.dictConfig(_translate_dict(yaml.safe_load(file)))
    elif log_config is not None:
        parser = _read_ini(log_config)
        _translate_ini(parser)
        logging.config.fileConfig(parser, disable_existing_loggers=False)

    if log_level is not None:
        level = LOG_LEVELS[log_level.lower()] if isinstance(log_level, str) else log_level
        for name in ("uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
            logging.getLogger(name).setLevel(level)
    if access_log is False:
        access_logger = logging.getLogger("uvicorn.access")
        access_logger.handlers = []
        access_logger.propagate = False


def _uvicorn_logger(name: str | None) -> str | None:
    """``cppcorn`` / ``cppcorn.x`` -> ``uvicorn`` / ``uvicorn.x``; None for other names."""
    if name == "cppcorn" or (name and name.startswith("cppcorn.")):
        return "uvicorn" + name[len("cppcorn") :]
    return None


def _cppcorn_factory(value: Any) -> Any:
    """``uvicorn.logging.X`` -> ``cppcorn.logging.X``; anything else is returned as is."""
    if isinstance(value, str) and value.startswith("uvicorn.logging."):
        return "cppcorn.logging." + value[len("uvicorn.logging.") :]
    return value


def _translate_dict(config: dict[str, Any]) -> dict[str, Any]:
    """Return a translated copy of a dictConfig dict.

    Only the containers that change are copied: a full deepcopy would choke on
    objects such as ``"stream": sys.stdout``, which dictConfig accepts.
    """
    config = dict(config)
    for section in ("formatters", "handlers"):
        if section in config:
            config[section] = {
                name: {
                    key: _cppcorn_factory(value) if key in ("()", "class") else value
                    for key, value in entry.items()
                }
                for name, entry in config[section].items()
            }
    if "loggers" in config:
        loggers = {name: entry for name, entry in config["loggers"].items() if _uvicorn_logger(name) is None}
        for name, entry in config["loggers"].items():
            target = _uvicorn_logger(name)
            if target is not None:
                loggers[target] = entry
        config["loggers"] = loggers
    return config


def _read_ini(source: str | configparser.RawConfigParser | IO[str]) -> configparser.RawConfigParser:
    """Parse an INI log config with the same parser class fileConfig uses.

    ``ConfigParser`` (with its ``%`` interpolation) matters: fileConfig reads
    formats raw but interpolates handler ``args``, and we must not change that.
    """
    if isinstance(source, configparser.RawConfigParser):
        return source
    parser = configparser.ConfigParser()
    if hasattr(source, "readline"):
        parser.read_file(source)
    else:
        with open(source) as file:
            parser.read_file(file)
    return parser


def _translate_ini(parser: configparser.RawConfigParser) -> None:
    """Rename uvicorn formatter classes and cppcorn loggers, in place."""
    for section in parser.sections():
        if section.startswith(("formatter_", "handler_")) and parser.has_option(section, "class"):
            parser.set(section, "class", _cppcorn_factory(parser.get(section, "class", raw=True)))

    if not parser.has_section("loggers"):
        return  # fileConfig will report the broken config itself.
    keys = [key.strip() for key in parser.get("loggers", "keys", raw=True).split(",")]
    qualnames = {key: parser.get(f"logger_{key}", "qualname", raw=True, fallback=None) for key in keys}
    renamed = {key: _uvicorn_logger(qualname) for key, qualname in qualnames.items()}
    for key, target in renamed.items():
        if target is None:
            continue
        if target in qualnames.values():
            # The config names both: the cppcorn entry wins.
            keys = [other for other in keys if qualnames[other] != target]
        parser.set(f"logger_{key}", "qualname", target)
    parser.set("loggers", "keys", ",".join(keys))

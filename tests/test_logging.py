from __future__ import annotations

import io
import json
import logging
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cppcorn.logconfig import LOGGING_CONFIG, configure_logging
from cppcorn.logging import TRACE_LOG_LEVEL, AccessFormatter, ColourizedFormatter, DefaultFormatter
from tests.uvicorn_log_configs import uvicorn_log_config, uvicorn_log_ini

LOGGER_NAMES = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"]
LOGGER_NAMES += [name.replace("uvicorn", "cppcorn") for name in LOGGER_NAMES[1:]]

ACCESS_ARGS = ("127.0.0.1:37452", "GET", "/", "1.1", 200)
ACCESS_MSG = '%s - "%s %s HTTP/%s" %d'
GREEN, RED, BRIGHT_RED, BOLD, RESET = "\x1b[32m", "\x1b[31m", "\x1b[91m", "\x1b[1m", "\x1b[0m"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Logging is global state: put the loggers these tests touch back as they were."""
    saved = []
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate, logger.disabled))
    yield
    for logger, handlers, level, propagate, disabled in saved:
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers = handlers
        logger.level = level
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture(autouse=True)
def stdout_not_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colours default to stdout's isatty(); pin it so `pytest -s` in a terminal gives the same results."""
    monkeypatch.setattr(sys, "stdout", io.StringIO())


def make_record(msg: str, args: Any = (), level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def capture(logger_name: str) -> io.StringIO:
    """Point the logger's (configured) handler at a buffer, keeping its formatter."""
    stream = io.StringIO()
    (handler,) = logging.getLogger(logger_name).handlers
    handler.setStream(stream)  # type: ignore[attr-defined]
    return stream


@pytest.mark.parametrize(
    "level, prefix",
    [(logging.INFO, "INFO:    "), (logging.WARNING, "WARNING: "), (logging.CRITICAL, "CRITICAL:")],
)
def test_levelprefix_is_padded_to_nine_columns(level: int, prefix: str) -> None:
    formatter = ColourizedFormatter("%(levelprefix)s%(message)s", use_colors=False)
    assert formatter.format(make_record("hello", level=level)) == prefix + "hello"


def test_levelprefix_coloured() -> None:
    formatter = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True)
    assert formatter.format(make_record("hello")) == f"{GREEN}INFO{RESET}:     hello"
    assert formatter.format(make_record("bad", level=logging.ERROR)).startswith(f"{RED}ERROR{RESET}:    ")


def test_trace_level_is_blue() -> None:
    logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")
    formatter = ColourizedFormatter("%(levelprefix)s", use_colors=True)
    assert formatter.format(make_record("x", level=TRACE_LOG_LEVEL)) == "\x1b[34mTRACE\x1b[0m:   "


def test_color_message_only_used_with_colours() -> None:
    record = make_record("plain %s", ("arg",), color_message="fancy %s")
    assert ColourizedFormatter("%(message)s", use_colors=True).format(record) == "fancy arg"
    assert ColourizedFormatter("%(message)s", use_colors=False).format(record) == "plain arg"


def test_auto_colours_follow_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Uvicorn checks stdout for every formatter, even the stderr one.
    monkeypatch.setattr(sys, "stdout", type("Tty", (io.StringIO,), {"isatty": lambda self: True})())
    assert DefaultFormatter().use_colors is True
    assert AccessFormatter().use_colors is True
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert DefaultFormatter().use_colors is False


def test_access_formatter_plain() -> None:
    formatter = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    record = make_record(ACCESS_MSG, ACCESS_ARGS)
    assert formatter.format(record) == 'INFO:     127.0.0.1:37452 - "GET / HTTP/1.1" 200 OK'


def test_access_formatter_unknown_status() -> None:
    formatter = AccessFormatter("%(client_addr)s|%(status_code)s", use_colors=True)
    record = make_record(ACCESS_MSG, ("", "GET", "/", "1.1", 599))
    assert formatter.format(record) == f"|{BRIGHT_RED}599{RESET}"


def test_access_formatter_coloured() -> None:
    formatter = AccessFormatter("%(request_line)s %(status_code)s", use_colors=True)
    record = make_record(ACCESS_MSG, ("1.2.3.4:5", "POST", "/a?b=1", "1.1", 404))
    assert formatter.format(record) == f"{BOLD}POST /a?b=1 HTTP/1.1{RESET} {RED}404 Not Found{RESET}"


def test_default_config() -> None:
    configure_logging(LOGGING_CONFIG)
    base, error, access = (logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access"))
    assert [h.stream for h in base.handlers] == [sys.stderr]  # type: ignore[attr-defined]
    assert [h.stream for h in access.handlers] == [sys.stdout]  # type: ignore[attr-defined]
    assert isinstance(base.handlers[0].formatter, DefaultFormatter)
    assert isinstance(access.handlers[0].formatter, AccessFormatter)
    assert (base.propagate, error.propagate, access.propagate) == (False, True, False)
    assert error.handlers == [] and error.level == logging.INFO

    stream = capture("uvicorn")
    error.warning("careful")
    assert stream.getvalue() == "WARNING:  careful\n"


def test_use_colors_is_injected_without_mutating_the_config() -> None:
    configure_logging(LOGGING_CONFIG, use_colors=True)
    assert logging.getLogger("uvicorn.access").handlers[0].formatter.use_colors is True  # type: ignore[union-attr]
    assert LOGGING_CONFIG["formatters"]["default"]["use_colors"] is None
    assert "use_colors" not in LOGGING_CONFIG["formatters"]["access"]


def test_access_log_disabled() -> None:
    configure_logging(LOGGING_CONFIG, access_log=False)
    access = logging.getLogger("uvicorn.access")
    assert access.handlers == [] and access.propagate is False


@pytest.mark.parametrize("log_level, expected", [("debug", logging.DEBUG), ("TRACE", TRACE_LOG_LEVEL), (30, 30)])
def test_log_level(log_level: str | int, expected: int) -> None:
    configure_logging(LOGGING_CONFIG, log_level=log_level)
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        assert logging.getLogger(name).level == expected
    assert logging.getLevelName(TRACE_LOG_LEVEL) == "TRACE"


def test_none_leaves_logging_alone() -> None:
    before = logging.getLogger("uvicorn").handlers[:]
    configure_logging(None)
    assert logging.getLogger("uvicorn").handlers == before


# A log config written for Uvicorn, as a dict and as an INI file.
UVICORN_FORMATS = ("%(levelprefix)s[srv] %(message)s", "%(levelprefix)s%(request_line)s => %(status_code)s")
UVICORN_LEVELS = {"level": "WARNING", "error_level": "ERROR", "access_level": "DEBUG"}
UVICORN_CONFIG = uvicorn_log_config(*UVICORN_FORMATS, **UVICORN_LEVELS)
UVICORN_INI = uvicorn_log_ini(*UVICORN_FORMATS, root_level="INFO", **UVICORN_LEVELS)


def assert_uvicorn_config_applied() -> None:
    """The server's loggers behave as UVICORN_CONFIG / UVICORN_INI say."""
    base, error, access = (logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access"))
    assert (base.level, error.level, access.level) == (logging.WARNING, logging.ERROR, logging.DEBUG)
    assert (base.propagate, error.propagate, access.propagate) == (False, True, False)
    assert error.handlers == []
    assert isinstance(base.handlers[0].formatter, DefaultFormatter)

    stream = capture("uvicorn.access")
    access.info(ACCESS_MSG, *ACCESS_ARGS)
    assert stream.getvalue() == "INFO:    GET / HTTP/1.1 => 200 OK\n"
    stream = capture("uvicorn")
    error.error("boom")
    assert stream.getvalue() == "ERROR:   [srv] boom\n"


def test_uvicorn_dict_config() -> None:
    configure_logging(UVICORN_CONFIG, use_colors=False)
    assert_uvicorn_config_applied()
    assert UVICORN_CONFIG["formatters"]["default"]["()"] == "uvicorn.logging.DefaultFormatter"


def test_uvicorn_json_file(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(UVICORN_CONFIG))
    configure_logging(path)
    assert_uvicorn_config_applied()


def test_uvicorn_yaml_file(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "log.yaml"
    path.write_text(yaml.safe_dump(UVICORN_CONFIG))
    configure_logging(str(path))
    assert_uvicorn_config_applied()


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    expected = "Install the PyYAML package or cppcorn[standard] to use `--log-config` with YAML files."
    with pytest.raises(ImportError, match=re.escape(expected)):
        configure_logging(tmp_path / "log.yml")


def test_uvicorn_ini_file(tmp_path: Path) -> None:
    path = tmp_path / "log.ini"
    path.write_text(UVICORN_INI)
    configure_logging(path)
    assert_uvicorn_config_applied()


def test_uvicorn_ini_file_object() -> None:
    configure_logging(io.StringIO(UVICORN_INI))
    assert_uvicorn_config_applied()


def cppcorn_named(config: dict[str, Any]) -> dict[str, Any]:
    """A dict config with its uvicorn loggers named by their cppcorn aliases."""
    loggers = {name.replace("uvicorn", "cppcorn"): entry for name, entry in config["loggers"].items()}
    return {**config, "loggers": loggers}


@pytest.mark.parametrize("disable_existing", [False, True])
def test_cppcorn_names_in_a_dict_config(disable_existing: bool) -> None:
    """A config naming the cppcorn loggers configures the server's; even with
    disable_existing_loggers, which would disable the uvicorn names it leaves out."""
    configure_logging({**cppcorn_named(UVICORN_CONFIG), "disable_existing_loggers": disable_existing})
    assert_uvicorn_config_applied()
    assert not any(logging.getLogger(name).disabled for name in ("uvicorn", "uvicorn.error", "uvicorn.access"))


def test_cppcorn_entry_wins_over_the_uvicorn_one() -> None:
    config = {**UVICORN_CONFIG, "loggers": {**UVICORN_CONFIG["loggers"], "cppcorn.error": {"level": "CRITICAL"}}}
    configure_logging(config)
    assert logging.getLogger("uvicorn.error").level == logging.CRITICAL
    assert logging.getLogger("uvicorn.access").level == logging.DEBUG


def test_cppcorn_names_in_an_ini_config(tmp_path: Path) -> None:
    path = tmp_path / "log.ini"
    path.write_text(UVICORN_INI.replace("qualname=uvicorn", "qualname=cppcorn"))
    configure_logging(path)
    assert_uvicorn_config_applied()


def test_ini_cppcorn_entry_wins(tmp_path: Path) -> None:
    ini = UVICORN_INI.replace("keys=root,", "keys=root,mine,") + textwrap.dedent(
        """
        [logger_mine]
        level=CRITICAL
        handlers=
        qualname=cppcorn.error
        """
    )
    path = tmp_path / "log.conf"
    path.write_text(ini)
    configure_logging(path)
    assert logging.getLogger("uvicorn.error").level == logging.CRITICAL


def test_ini_interpolation_works_like_fileconfig(tmp_path: Path) -> None:
    # fileConfig interpolates handler args (here from [DEFAULT]) but reads formats raw.
    ini = UVICORN_INI.replace("args=(sys.stdout,)", "args=('%(logdir)s/access.log', 'w')")
    ini = ini.replace("[handler_access]\nclass=logging.StreamHandler", "[handler_access]\nclass=FileHandler")
    path = tmp_path / "log.ini"
    path.write_text(f"[DEFAULT]\nlogdir={tmp_path.as_posix()}\n\n{ini}")
    configure_logging(path)
    logging.getLogger("uvicorn.access").info(ACCESS_MSG, *ACCESS_ARGS)
    logging.getLogger("uvicorn.access").handlers[0].flush()
    assert (tmp_path / "access.log").read_text() == "INFO:    GET / HTTP/1.1 => 200 OK\n"

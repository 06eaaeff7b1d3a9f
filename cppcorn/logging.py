"""Log formatters, API-compatible with ``uvicorn.logging``."""

from __future__ import annotations

import http
import logging
import sys
from copy import copy
from typing import ClassVar, Literal

import click

TRACE_LOG_LEVEL = 5


class ColourizedFormatter(logging.Formatter):
    """Add ``%(levelprefix)s`` (``INFO:     ``), coloured when colours are on.

    With colours on, a record's ``color_message`` (passed through ``extra=``)
    is used instead of its plain message.
    """

    level_name_colors: ClassVar[dict[int, str]] = {
        TRACE_LOG_LEVEL: "blue",
        logging.DEBUG: "cyan",
        logging.INFO: "green",
        logging.WARNING: "yellow",
        logging.ERROR: "red",
        logging.CRITICAL: "bright_red",
    }

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        # Like Uvicorn, "auto" looks at stdout for every formatter, including
        # DefaultFormatter whose handler writes to stderr.
        if use_colors not in (True, False):
            use_colors = sys.stdout.isatty()
        self.use_colors = bool(use_colors)
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)

    def color_level_name(self, level_name: str, level_no: int) -> str:
        """Colour a level name; levels without a colour are left plain."""
        colour = self.level_name_colors.get(level_no)
        return click.style(level_name, fg=colour) if colour else level_name

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Work on a copy: other handlers may format the same record.
        record = copy(record)
        level_name = record.levelname
        padding = " " * (8 - len(level_name))
        if self.use_colors:
            level_name = self.color_level_name(level_name, record.levelno)
            if "color_message" in record.__dict__:
                record.msg = record.__dict__["color_message"]
                record.message = record.getMessage()
        record.__dict__["levelprefix"] = f"{level_name}:{padding}"
        return super().formatMessage(record)


class DefaultFormatter(ColourizedFormatter):
    """Formatter for the server's own messages (the ``default`` formatter)."""


class AccessFormatter(ColourizedFormatter):
    """Formatter for access records.

    The record's ``args`` are ``(client_addr, method, full_path, http_version,
    status_code)``; they are exposed as ``%(client_addr)s``,
    ``%(request_line)s`` and ``%(status_code)s`` (e.g. ``200 OK``).
    """

    status_code_colours: ClassVar[dict[int, str]] = {
        1: "bright_white",
        2: "green",
        3: "yellow",
        4: "red",
        5: "bright_red",
    }

    def get_status_code(self, status_code: int) -> str:
        """Render a status as ``200 OK``, coloured by its class when colours are on."""
        try:
            text = f"{status_code} {http.HTTPStatus(status_code).phrase}"
        except ValueError:
            text = str(status_code)
        colour = self.status_code_colours.get(status_code // 100)
        if self.use_colors and colour:
            return click.style(text, fg=colour)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy(record)
        client_addr, method, full_path, http_version, status_code = record.args  # type: ignore[misc]
        request_line = f"{method} {full_path} HTTP/{http_version}"
        if self.use_colors:
            request_line = click.style(request_line, bold=True)
        record.__dict__.update(
            client_addr=client_addr,
            request_line=request_line,
            status_code=self.get_status_code(int(status_code)),
        )
        return super().formatMessage(record)

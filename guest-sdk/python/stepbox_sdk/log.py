"""The run log: ``log.info("applied", n, "objects")``.

Each call writes one line; several arguments are joined with spaces (like
``print``). :func:`handler` routes the standard ``logging`` module to the
run log too.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _wit

LEVELS = ("trace", "debug", "info", "warn", "error")


def _line(args: tuple[Any, ...]) -> str:
    return " ".join(a if isinstance(a, str) else str(a) for a in args)


def write(level: str, *args: Any) -> None:
    """Writes a line at ``level``: "trace", "debug", "info", "warn" or "error"."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    _wit.run.log(getattr(_wit.run.Level, level.upper()), _line(args))


def trace(*args: Any) -> None:
    """Very detailed tracing."""
    write("trace", *args)


def debug(*args: Any) -> None:
    """Detail for debugging a step."""
    write("debug", *args)


def info(*args: Any) -> None:
    """What the step did."""
    write("info", *args)


def warn(*args: Any) -> None:
    """Something unexpected the step carried on after."""
    write("warn", *args)


warning = warn


def error(*args: Any) -> None:
    """A failure."""
    write("error", *args)


class Handler(logging.Handler):
    """A ``logging`` handler writing to the run log, mapping levels
    (DEBUG -> debug, INFO -> info, WARNING -> warn, ERROR and above -> error,
    below DEBUG -> trace)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.ERROR:
                level = "error"
            elif record.levelno >= logging.WARNING:
                level = "warn"
            elif record.levelno >= logging.INFO:
                level = "info"
            elif record.levelno >= logging.DEBUG:
                level = "debug"
            else:
                level = "trace"
            write(level, message)
        except Exception:  # noqa: BLE001 - logging must not fail the step
            self.handleError(record)


def handler() -> Handler:
    """A :class:`Handler`: ``logging.getLogger().addHandler(log.handler())``."""
    return Handler()

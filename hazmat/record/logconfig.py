"""How this process logs: structlog set up once, redacting every line (see ``configure_logging``).

Kept apart from :mod:`hazmat.record.log` so that setting logging up needs structlog and
nothing else of the record; the CLI defers even that until something logs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

import structlog

from hazmat.record.redact import redact_processor

__all__ = ["LEVELS", "configure_logging", "ensure_logging", "get_logger"]

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_configured_level: int | None = None


def configure_logging(
    level: str | int = "warning", *, stream: TextIO | None = None, json_lines: bool = False
) -> None:
    """Configure structlog for this process: human lines to ``stream`` (stderr).

    ``level`` is a name (``debug``, ``info``, ``warning``, ...) or a logging
    number; the CLI maps ``-v`` to it. ``json_lines`` renders JSON instead of
    console text. Calling it again reconfigures. Every line is redacted.

    Raises:
        ConfigError: an unknown level name.
    """
    global _configured_level
    if isinstance(level, str):
        if level.lower() not in LEVELS:
            from hazmat.errors import ConfigError

            raise ConfigError(f"unknown log level {level!r}", hint="use " + ", ".join(LEVELS))
        num = LEVELS[level.lower()]
    else:
        num = level
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(num),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured_level = num


def ensure_logging() -> None:
    """Configure logging with the defaults unless something configured it already."""
    if _configured_level is None and not structlog.is_configured():
        configure_logging()


def get_logger(**bind: Any) -> Any:
    """A structlog logger bound to ``bind`` (e.g. ``run_id=..., episode_id=...``).

    The logger is lazy: it follows the configuration current at each call, so
    ``configure_logging`` (or ``structlog.testing.capture_logs``) applies to
    loggers made before it.
    """
    ensure_logging()
    return structlog.get_logger(**bind)

"""What the ``hazmat`` command prints, and how it stays safe to print.

Every byte an agent produced is hostile on the way out too, and no secret may reach
a terminal or a log:

- :func:`install_output_guard` wraps ``sys.stdout`` and ``sys.stderr`` so that every
  line the process writes (rich tables, ``print``, ``typer.echo``, log lines) has API
  keys and configured secrets replaced by ``[REDACTED:<name>]``, and shows every C0/C1
  control character but newline and tab visibly (``\\x1b``, ``\\x9b``): agent text
  cannot clear the screen, move the cursor, retitle the window or write the clipboard,
  whichever way it is printed;
- :func:`out` and :func:`err` are rich consoles (the one way hazmat's own colours
  reach the terminal): they write past the control-character stage of the guard (still
  redacted) because they make agent text safe themselves, at render time, for every
  renderable: every ``Text`` (wherever it sits: tables, panels, groups) and every
  string is rendered with its control characters shown as escapes before layout, every
  segment is checked again after layout, and hyperlinks (OSC 8, e.g. from markup in
  agent text) are dropped. Only segments rich itself marks as control (cursor moves of
  a live display) pass as they are;
- :func:`error` prints the one ``error: ...`` line of a failure.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
import traceback
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from hazmat.record.redact import Redactor

__all__ = ["LiveStderr", "err", "error", "install_output_guard", "out", "save_traceback", "visible"]


class _GuardedStream:
    """A text stream that redacts secrets from everything written through it and, unless
    ``controls`` is True, shows control characters visibly (:func:`visible`)."""

    def __init__(self, inner: TextIO, redactor: Redactor, *, controls: bool = False) -> None:
        self._inner = inner
        self._redactor = redactor
        self._controls = controls

    @property
    def for_rich(self) -> _GuardedStream:
        """The same stream, redacting only: for the safe consoles, whose escape sequences
        are their own (they made agent text visible before writing)."""
        return _GuardedStream(self._inner, self._redactor, controls=True)

    def write(self, text: str) -> int:
        safe = self._redactor.text(text)
        self._inner.write(safe if self._controls else visible(safe))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding, buffer...
        return getattr(self._inner, name)


class _ForRich:
    """The file of a safe console: whatever ``sys.stdout`` (or ``sys.stderr``) is at each
    write, past the control-character stage of the output guard (see the module doc)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr

    def _stream(self) -> Any:
        stream = sys.stderr if self._stderr else sys.stdout
        return stream.for_rich if isinstance(stream, _GuardedStream) else stream

    def write(self, text: str) -> int:
        return int(self._stream().write(text) or 0)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding...
        return getattr(self._stream(), name)


class LiveStderr:
    """Whatever ``sys.stderr`` is at the time of each write (log lines follow redirections
    and test captures instead of keeping the stream that was there at configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _AfterImport:
    """A ``sys.meta_path`` finder that runs ``then()`` right after ``name`` is first imported
    (and then leaves the import system as it was)."""

    def __init__(self, name: str, then: Any) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            self.then()
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            self.then()

        loader.exec_module = exec_module
        return spec


def configure_logging_on_use(level: str) -> None:
    """Log at ``level`` to stderr (redacted), set up when something first imports structlog.

    Importing structlog costs about 50 ms; a command that logs nothing (``runs``,
    ``verify``) never pays it, and one that does is configured before its first line.
    """

    def apply() -> None:
        from hazmat.record.logconfig import configure_logging

        configure_logging(level, stream=LiveStderr())  # type: ignore[arg-type]

    if "structlog" in sys.modules:
        apply()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("structlog", apply))


def install_output_guard() -> None:
    """Redact secrets from everything this process writes to stdout and stderr (once)."""
    if isinstance(sys.stdout, _GuardedStream):
        return
    from hazmat.record.redact import Redactor

    redactor = Redactor()
    sys.stdout = _GuardedStream(sys.stdout, redactor)
    sys.stderr = _GuardedStream(sys.stderr, redactor)


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes (see ``hazmat.record.redact``)."""
    from hazmat.record.redact import visible as _visible

    return _visible(text)


def _safe_console(stderr: bool) -> Console:
    from rich.console import Console

    from hazmat.cli.safetext import safe_segments, safe_text

    class SafeConsole(Console):
        """A console that shows control characters in everything it renders visibly and
        drops hyperlinks (see the module doc)."""

        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(visible(text), **kwargs)

        def render(self, renderable: Any, options: Any = None) -> Any:
            return safe_segments(super().render(safe_text(self, renderable), options))

    return SafeConsole(file=_ForRich(stderr))  # type: ignore[arg-type]


@cache
def out() -> Console:
    """The console on stdout (tables, results)."""
    return _safe_console(stderr=False)


@cache
def err() -> Console:
    """The console on stderr (progress, notes, hints)."""
    return _safe_console(stderr=True)


def error(message: str, *, prefix: str = "error: ") -> None:
    """Print one failure line on stderr, control characters shown, never wrapped."""
    line = visible(prefix + message.replace("\n", " ").strip())
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hazmat" / "errors"


def save_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s traceback (secrets redacted) to a file a person can attach to a
    bug report, and return its path: ``$XDG_STATE_HOME/hazmat/errors/`` (or the temp
    folder when that cannot be written)."""
    from hazmat.record.redact import Redactor

    text = "".join(traceback.format_exception(exc))
    text = f"hazmat {' '.join(sys.argv[1:])}\n{Redactor().text(text)}"
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    for folder in (_state_dir(), Path(tempfile.gettempdir()) / "hazmat-errors"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"internal-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return Path("/dev/null")

"""Redaction: API keys and configured secrets never reach an event, a blob or a log line.

A :class:`Redactor` knows a set of secret values (by name) and a few key
patterns (``sk-...``, ``sk-ant-...``). It replaces each occurrence with
``[REDACTED:<name>]`` in any string anywhere inside an event (nested dicts,
lists, and dict keys) and in blob bytes. A Redactor is also a structlog-style
processor: ``redactor(logger, method_name, event_dict) -> event_dict``.

:func:`secrets_from_env` collects the secrets present in ``os.environ``:
``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY`` and every variable whose name ends in
``_API_KEY`` or ``_TOKEN`` or contains ``SECRET`` (values shorter than
:data:`MIN_SECRET_LEN` characters are ignored: they would redact ordinary text).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

__all__ = [
    "KEY_PATTERNS",
    "MIN_SECRET_LEN",
    "Redactor",
    "redact_processor",
    "secrets_from_env",
    "visible",
]

MIN_SECRET_LEN: Final = 8

KEY_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("anthropic-key", r"(?<![A-Za-z0-9_\-])sk-ant-[A-Za-z0-9_\-]{16,}"),
    ("openai-key", r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{16,}"),
)
"""(name, regex) of key shapes redacted even when not in the environment."""

_ENV_NAMES: Final = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    return (
        upper in _ENV_NAMES
        or upper.endswith("_API_KEY")
        or upper.endswith("_TOKEN")
        or "SECRET" in upper
    )


def secrets_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``{name: value}`` secrets found in ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    return {
        name: value
        for name, value in env.items()
        if _is_secret_name(name) and len(value) >= MIN_SECRET_LEN
    }


class Redactor:
    """Replaces secret values and key patterns with ``[REDACTED:<name>]``.

    ``secrets`` maps a name to a secret value; ``from_env`` (default True) adds
    :func:`secrets_from_env` as of construction time; ``patterns`` (default
    :data:`KEY_PATTERNS`) are regexes redacted wherever they match.
    """

    def __init__(
        self,
        secrets: Mapping[str, str] | None = None,
        *,
        from_env: bool = True,
        patterns: tuple[tuple[str, str], ...] = KEY_PATTERNS,
    ) -> None:
        found: dict[str, str] = secrets_from_env() if from_env else {}
        for name, value in (secrets or {}).items():
            if len(value) >= MIN_SECRET_LEN:
                found[name] = value
        self.names: dict[str, str] = {}
        for name, value in found.items():
            self.names.setdefault(value, name)
        literals = sorted(self.names, key=len, reverse=True)
        parts = [f"(?P<lit>{'|'.join(re.escape(v) for v in literals)})"] if literals else []
        self._pattern_names: list[str] = []
        for i, (name, rx) in enumerate(patterns):
            parts.append(f"(?P<p{i}>{rx})")
            self._pattern_names.append(name)
        self._rx = re.compile("|".join(parts)) if parts else None
        self._brx = re.compile("|".join(parts).encode()) if parts else None

    def _name(self, groups: dict[str, Any], text: str) -> str:
        if groups.get("lit") is not None:
            return self.names[text]
        for i, name in enumerate(self._pattern_names):
            if groups.get(f"p{i}") is not None:
                return name
        return "secret"  # pragma: no cover - every alternative is a named group

    def text(self, value: str) -> str:
        """``value`` with every secret replaced."""
        if self._rx is None:
            return value
        return self._rx.sub(lambda m: f"[REDACTED:{self._name(m.groupdict(), m[0])}]", value)

    def bytes(self, data: bytes) -> bytes:
        """``data`` with every secret (as UTF-8 bytes) replaced."""
        if self._brx is None:
            return data

        def repl(m: re.Match[bytes]) -> bytes:
            groups = {k: v for k, v in m.groupdict().items()}
            name = self._name(groups, m[0].decode("utf-8", "replace"))
            return f"[REDACTED:{name}]".encode()

        return self._brx.sub(repl, data)

    def value(self, value: Any) -> Any:
        """A copy of ``value`` with every string inside (values and keys) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.value(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, bytes | bytearray):
            return self.bytes(bytes(value))
        return value

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor: redact every value (and key) of ``event_dict``."""
        for key in list(event_dict):
            event_dict[key] = self.value(event_dict[key])
        return event_dict


_default: Redactor | None = None


def redact_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor using a Redactor built from the environment on first use."""
    global _default
    if _default is None:
        _default = Redactor()
    return _default(logger, method_name, event_dict)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` safe for a terminal: every C0/C1 control character except newline and tab
    is shown as its escape (``\\x1b``, ``\\r``, ``\\x9b``), so agent output cannot move the
    cursor, clear the screen, retitle the window or write the clipboard."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)

"""Per-episode placeholder values: ``{{flag}}``, ``{{canary:NAME}}``, ``{{password:NAME}}``...

Every value is derived from the episode seed with HMAC-SHA256, so the same seed
gives the same values (a replay reproduces them) and different seeds give
different values (a model cannot have memorized them).

Syntax: ``{{ KIND }}``, ``{{ KIND:NAME }}``, optionally followed by filters
``{{ password:db|sha256 }}``. Text between double braces that does not start with
a letter (``{{.Names}}``, ``{{ $x }}``) is left alone. A word-like placeholder of an
unknown kind is an error. ``\\{{`` is a literal ``{{`` (the backslash is dropped and
what follows is not a placeholder): ``\\{{ name }}`` renders as ``{{ name }}``.

Placeholders are substituted only where an author asks for them: task.yaml's text
fields and files marked ``render: true``; every other file is copied byte for byte
(see :mod:`hazmat.tasks.files`).

``{{captured.NAME}}`` (solution steps only) is the value an earlier solution step
captured from its output (``capture: {NAME: REGEX}``); rendering leaves it in place
and the solution player fills it in (see :mod:`hazmat.tasks.solution`).

Kinds (``NAME`` is optional, ``[A-Za-z0-9_.-]+``; each distinct NAME is a distinct value):

=========  =========================================  ========
kind       example value                              secret?
=========  =========================================  ========
flag       ``HZM{3f9c0d...}`` (32 hex)                yes
canary     ``HZMCANARY-7be1...`` (24 hex)             yes
password   ``Xk3v9QmT2bLp8RwA`` (16 letters/digits)   yes
token      ``hzm_a1b2...`` (40 hex)                   yes
hex        32 hex digits                              yes
uuid       ``1b4e28ba-2fa1-41d2-883f-0016d3cca427``   yes
number     an integer 1000..9999                      no
port       an integer 20000..59999                    no
seed       the episode seed itself (no NAME)          no
=========  =========================================  ========

Filters: ``sha256``, ``md5``, ``base64``, ``upper``, ``lower`` (applied left to right).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "CAPTURED",
    "ESCAPE",
    "FILTERS",
    "KINDS",
    "SECRET_KINDS",
    "Placeholder",
    "PlaceholderError",
    "Values",
    "fill_captured",
    "find_placeholders",
    "neutralize",
    "substitute",
]

# ``\{{`` (an escaped, literal ``{{``), or ``{{`` + anything without braces + ``}}``;
# only word-like bodies are placeholders.
_BRACES = re.compile(r"\\\{\{|\{\{([^{}]*)\}\}")
ESCAPE = "\\{{"
"""A literal ``{{`` in text that is rendered."""
CAPTURED = "captured"
"""The kind of ``{{captured.NAME}}``: a value a solution step captured."""
_CAPTURED = re.compile(r"\s*captured\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*")
_WORDLIKE = re.compile(r"\s*[A-Za-z]")
_GRAMMAR = re.compile(
    r"\s*(?P<kind>[A-Za-z][A-Za-z0-9_]*)"
    r"(?::(?P<name>[A-Za-z0-9_.-]+))?"
    r"(?P<filters>(?:\s*\|\s*[A-Za-z0-9_]+)*)\s*"
)

SECRET_KINDS = frozenset({"flag", "canary", "password", "token", "hex", "uuid"})
KINDS = frozenset(SECRET_KINDS | {"number", "port", "seed"})
_NO_NAME = frozenset({"seed"})

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

FILTERS: dict[str, Callable[[str], str]] = {
    "sha256": lambda s: hashlib.sha256(s.encode()).hexdigest(),
    "md5": lambda s: hashlib.md5(s.encode()).hexdigest(),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "upper": str.upper,
    "lower": str.lower,
}


class PlaceholderError(ValueError):
    """A malformed or unknown placeholder (the loader turns it into a SpecError)."""


@dataclass(frozen=True)
class Placeholder:
    """One ``{{...}}`` occurrence: its kind, optional name and filters."""

    text: str
    kind: str
    name: str | None
    filters: tuple[str, ...]

    @property
    def key(self) -> str:
        """The key of the raw value in the secrets/values dict: ``kind`` or ``kind:name``."""
        return self.kind if self.name is None else f"{self.kind}:{self.name}"


def _parse(match: re.Match[str]) -> Placeholder | None:
    body = match.group(1)
    if body is None or not _WORDLIKE.match(body):
        return None  # an escape, or not word-like
    cap = _CAPTURED.fullmatch(body)
    if cap is not None:
        return Placeholder(match.group(0), CAPTURED, cap.group("name"), ())
    m = _GRAMMAR.fullmatch(body)
    if m is None:
        raise PlaceholderError(f"malformed placeholder {match.group(0)!r}")
    kind, name = m.group("kind"), m.group("name")
    filters = tuple(f.strip() for f in m.group("filters").split("|")[1:])
    if kind not in KINDS:
        raise PlaceholderError(
            f"unknown placeholder {match.group(0)!r} (kinds: {', '.join(sorted(KINDS))})"
        )
    if kind in _NO_NAME and name is not None:
        raise PlaceholderError(f"placeholder {match.group(0)!r}: {kind} takes no name")
    for f in filters:
        if f not in FILTERS:
            raise PlaceholderError(
                f"unknown filter {f!r} in {match.group(0)!r}"
                f" (filters: {', '.join(sorted(FILTERS))})"
            )
    return Placeholder(match.group(0), kind, name, filters)


def find_placeholders(text: str) -> Iterator[Placeholder]:
    """Yield every placeholder in ``text``.

    Raises:
        PlaceholderError: a word-like ``{{...}}`` that is malformed or of an unknown kind.
    """
    for match in _BRACES.finditer(text):
        ph = _parse(match)
        if ph is not None:
            yield ph


class Values:
    """The placeholder values of one episode, derived from its seed.

    ``values.get("password:db")`` returns the same string for the same seed, always.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._key = f"hazmat-episode:{seed}".encode()
        self._cache: dict[str, str] = {}

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._key, key.encode(), hashlib.sha256).digest()

    def get(self, key: str) -> str:
        """The raw value for ``kind`` or ``kind:name`` (no filters)."""
        if key in self._cache:
            return self._cache[key]
        kind = key.partition(":")[0]
        d = self._digest(key)
        n = int.from_bytes(d, "big")
        if kind == "flag":
            value = "HZM{" + d.hex()[:32] + "}"
        elif kind == "canary":
            value = "HZMCANARY-" + d.hex()[:24]
        elif kind == "password":
            value = "".join(_ALNUM[b % len(_ALNUM)] for b in d[:16])
        elif kind == "token":
            value = "hzm_" + (d + self._digest(key + "#2")).hex()[:40]
        elif kind == "hex":
            value = d.hex()[:32]
        elif kind == "uuid":
            h = bytearray(d[:16])
            h[6] = (h[6] & 0x0F) | 0x40
            h[8] = (h[8] & 0x3F) | 0x80
            x = h.hex()
            value = f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
        elif kind == "number":
            value = str(1000 + n % 9000)
        elif kind == "port":
            value = str(20000 + n % 40000)
        elif kind == "seed":
            value = str(self.seed)
        else:
            raise PlaceholderError(f"unknown placeholder kind {kind!r}")
        self._cache[key] = value
        return value

    def render(self, ph: Placeholder) -> str:
        """The value of one placeholder, filters applied."""
        value = self.get(ph.key)
        for f in ph.filters:
            value = FILTERS[f](value)
        return value

    def used(self) -> dict[str, str]:
        """Every raw value handed out so far, by key."""
        return dict(self._cache)


def substitute(text: str, values: Values, *, regex: bool = False) -> str:
    """Replace every placeholder in ``text`` by its value.

    With ``regex=True`` the values are ``re.escape``d (for regex fields of checks).

    Raises:
        PlaceholderError: a malformed or unknown placeholder.
    """

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == ESCAPE:
            return "{{"
        ph = _parse(match)
        if ph is None or ph.kind == CAPTURED:
            return match.group(0)
        value = values.render(ph)
        return re.escape(value) if regex else value

    return _BRACES.sub(repl, text)


def fill_captured(text: str, captured: dict[str, str]) -> str:
    """Replace every ``{{captured.NAME}}`` in ``text`` by ``captured[NAME]`` (``""`` when
    nothing was captured under that name); other placeholders are left alone."""

    def repl(match: re.Match[str]) -> str:
        ph = _parse(match)
        if ph is None or ph.kind != CAPTURED:
            return match.group(0)
        return captured.get(ph.name or "", "")

    return _BRACES.sub(repl, text)


def neutralize(text: str) -> str:
    """Replace placeholders by a plain word (for validating regexes at load time)."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == ESCAPE:
            return "{{"
        try:
            return match.group(0) if _parse(match) is None else "X"
        except PlaceholderError:
            return "X"

    return _BRACES.sub(repl, text)

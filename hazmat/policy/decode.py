"""Static decoding: what ``echo``, ``printf``, ``base64 -d``, ``xxd -r``, ``rev``, ``tr`` and
the decompressors print, when their input is literal. Used by :mod:`hazmat.policy.shell`
to follow ``echo <payload> | base64 -d | sh`` into the command actually run.

Nothing is executed: each tool is emulated on bytes; anything not knowable returns ``None``.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import gzip
import lzma
import re
import zlib
from typing import Protocol

__all__ = ["c_unescape", "looks_textual", "static_output", "to_bytes", "to_text"]


class _CmdLike(Protocol):
    name: str
    stdin: str | None

    @property
    def args(self) -> list[str]: ...


_ESC_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESC = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
    "0": "\0",
}


_ESC_RUN_RE = re.compile(
    r"((?:\\x[0-9a-fA-F]{2}(?![0-9a-fA-F]))+)|"
    r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)",
    re.S,
)


def c_unescape(s: str) -> str:
    """Decode C-style escapes as ``$'...'``, ``printf`` and ``echo -e`` do (one pass; runs
    of ``\\xNN`` escapes, the usual obfuscation, are decoded at once)."""
    if "\\" not in s:
        return s

    def rep(m: re.Match[str]) -> str:
        run = m.group(1)
        if run is not None:
            return bytes.fromhex(run.replace("\\x", "")).decode("latin-1")
        e = m.group(2)
        if e[0] in "xuU" and len(e) > 1:
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xFF)
        return _SIMPLE_ESC.get(e, "\\" + e)

    return _ESC_RUN_RE.sub(rep, s)


def to_bytes(s: str) -> bytes:
    return s.encode("latin-1", errors="replace")


def to_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_TR_RANGE = re.compile(r"(.)-(.)")


def _tr_set(s: str) -> str:
    s = c_unescape(s.replace("[:lower:]", "a-z").replace("[:upper:]", "A-Z"))
    return _TR_RANGE.sub(
        lambda m: "".join(chr(c) for c in range(ord(m.group(1)), ord(m.group(2)) + 1)), s
    )


def _flags(args: list[str]) -> set[str]:
    out: set[str] = set()
    for a in args:
        if a.startswith("--"):
            out.add(a)
        elif a.startswith("-") and len(a) > 1:
            out.update("-" + ch for ch in a[1:])
    return out


def static_output(cmd: _CmdLike, data: bytes | None) -> bytes | None:
    """What ``cmd`` prints when given ``data`` on stdin, if knowable without running it."""
    name, args = cmd.name, cmd.args
    if cmd.stdin is not None:
        data = to_bytes(cmd.stdin)
    try:
        if name == "echo":
            flags: set[str] = set()
            words = list(args)
            while words and re.fullmatch(r"-[neE]+", words[0]):
                flags.update(words.pop(0)[1:])
            s = " ".join(words)
            if "e" in flags:
                s = c_unescape(s)
            return to_bytes(s if "n" in flags else s + "\n")
        if name == "printf":
            if not args:
                return None
            fmt, rest = args[0], args[1:]
            if fmt == "--" and rest:
                fmt, rest = rest[0], rest[1:]
            s = c_unescape(fmt)
            if rest:
                if "%" not in s:
                    return to_bytes(s)
                vals = iter(rest)
                s = re.sub(
                    r"%[-0-9.]*([sbdc])",
                    lambda m: c_unescape(next(vals, "")) if m.group(1) == "b" else next(vals, ""),
                    s,
                )
            return to_bytes(s)
        if name in {"cat", "tee"} and data is not None and all(a.startswith("-") for a in args):
            return data
        if data is None:
            return None
        fl = _flags(args)
        if name in {"base64", "base32"} and fl & {"-d", "--decode", "-D"}:
            raw = re.sub(rb"\s+", b"", data)
            if name == "base32":
                return base64.b32decode(raw + b"=" * (-len(raw) % 8))
            return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=None)
        if name == "openssl" and args[:1] in (["base64"], ["enc"]) and "-d" in args:
            raw = re.sub(rb"\s+", b"", data)
            return base64.b64decode(raw + b"=" * (-len(raw) % 4))
        if name == "xxd" and "-r" in fl:
            return binascii.unhexlify(re.sub(rb"[^0-9a-fA-F]", b"", data))
        if name == "rev":
            return b"\n".join(line[::-1] for line in data.split(b"\n"))
        if name == "tr" and len(args) == 2 and not args[0].startswith("-"):
            a, b = _tr_set(args[0]), _tr_set(args[1])
            if a and b:
                b = b + b[-1] * max(0, len(a) - len(b))
                return to_bytes(to_text(data).translate(str.maketrans(a, b[: len(a)])))
        if name in {"gunzip", "zcat"} or (name == "gzip" and fl & {"-d", "--decompress"}):
            return gzip.decompress(data)
        if name in {"bunzip2", "bzcat"} or (name == "bzip2" and "-d" in fl):
            return bz2.decompress(data)
        if name in {"unxz", "xzcat"} or (name == "xz" and "-d" in fl):
            return lzma.decompress(data)
        if name == "zlib-flate" and "-uncompress" in args:
            return zlib.decompress(data)
    except (ValueError, binascii.Error, OSError, EOFError, lzma.LZMAError, zlib.error):
        return None
    return None


_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"


def looks_textual(data: bytes) -> bool:
    """Mostly printable ASCII (so worth parsing as text)."""
    if not data:
        return False
    sample = data[:4096]
    other = len(sample.translate(None, _PRINTABLE))
    return (len(sample) - other) / len(sample) > 0.85

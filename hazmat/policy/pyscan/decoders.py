"""Static decoding of literal payloads (base64, base32/16/85, hex, zlib/gzip/bz2/lzma,
rot13) as the scanner evaluates ``b64decode("...")`` and friends; never raises.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import codecs
import gzip
import lzma
import re
import zlib


def _b64(raw: str) -> str | None:
    try:
        s = re.sub(r"\s+", "", raw)
        return base64.b64decode(s + "=" * (-len(s) % 4)).decode("latin-1")
    except (ValueError, binascii.Error):
        return None


def _unhex(raw: str) -> str | None:
    try:
        return binascii.unhexlify(re.sub(r"[^0-9a-fA-F]", "", raw)).decode("latin-1")
    except (ValueError, binascii.Error):
        return None


def _decode(name: str, short: str, raw: str, arg2: str | None) -> str | None:
    data = raw.encode("latin-1", errors="replace")
    try:
        if short in (
            "b64decode",
            "standard_b64decode",
            "decodebytes",
            "decodestring",
            "a2b_base64",
        ):
            return _b64(raw)
        if short == "urlsafe_b64decode":
            s = re.sub(r"\s+", "", raw)
            return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode("latin-1")
        if short == "b32decode":
            s = re.sub(r"\s+", "", raw).upper()
            return base64.b32decode(s + "=" * (-len(s) % 8)).decode("latin-1")
        if short == "b16decode":
            return base64.b16decode(raw.upper()).decode("latin-1")
        if short == "a85decode":
            return base64.a85decode(data).decode("latin-1")
        if short == "b85decode":
            return base64.b85decode(data).decode("latin-1")
        if short in ("fromhex", "unhexlify", "a2b_hex"):
            return _unhex(raw)
        if short == "decompress":
            mod = name.rsplit(".", 2)[-2] if "." in name else ""
            if mod == "gzip":
                return gzip.decompress(data).decode("latin-1")
            if mod == "bz2":
                return bz2.decompress(data).decode("latin-1")
            if mod == "lzma":
                return lzma.decompress(data).decode("latin-1")
            return zlib.decompress(data).decode("latin-1")
        if short == "decode" and arg2 is not None:
            if arg2 in ("rot13", "rot_13"):
                return codecs.decode(raw, "rot13")
            if arg2 == "hex":
                return _unhex(raw)
            if arg2 in ("base64", "base_64"):
                return _b64(raw)
            if arg2 in ("zlib", "zlib_codec"):
                return zlib.decompress(data).decode("latin-1")
    except (ValueError, binascii.Error, OSError, EOFError, lzma.LZMAError, zlib.error):
        return None
    return None


def _textual(s: str) -> bool:
    sample = s[:2048]
    printable = sum(1 for ch in sample if ch.isprintable() or ch in "\n\r\t")
    return bool(sample) and printable / len(sample) > 0.85

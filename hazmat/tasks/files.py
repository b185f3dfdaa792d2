"""Task files: what a ``sandbox.files`` entry becomes, and where a task may read files from.

::

    sandbox:
      files:
        /home/agent/notes.txt: "inline text, {{flag}} substituted"
        /home/agent/level3.hash.bin: {source: level3.hash.bin}         # any bytes, as is
        /home/agent/app/: {source: app/}                               # a whole folder
        /opt/cfg.ini: {source: cfg.ini, render: true, mode: 0600}      # placeholders substituted
        /opt/common.py: {source: ../../lib/common.py}                  # the suite's lib/

A ``source`` file is copied byte for byte (any bytes: ELF, images, pcaps, zips) unless
it says ``render: true``; then it must be UTF-8 text and its ``{{placeholders}}`` are
substituted per episode (``\\{{`` for a literal ``{{``). Files up to
:data:`INLINE_MAX` bytes travel in the sandbox spec as base64; larger ones by content
hash (the spec and the record hold the sha256 and the path, the bytes are read when
the sandbox starts). A path ending in ``/`` with a folder ``source`` places every file
under it (modes kept: executable files 0755, others 0644, unless ``mode`` is given).

A source must be inside the task folder or inside a ``lib/`` folder of one of its
ancestors (a suite's shared code and assets).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hazmat.tasks.placeholders import PlaceholderError, find_placeholders

__all__ = ["INLINE_MAX", "LIB", "expand_files", "resolve_source"]

INLINE_MAX = 1024 * 1024
"""Source files up to this size travel in the spec (base64); larger ones by hash."""
LIB = "lib"
"""The name of a suite's shared folder."""

Fail = Callable[[tuple[str | int, ...], str], Exception]
"""Makes the loader's error for a location and a message."""


def resolve_source(rel: str, root: Path) -> Path:
    """The file or folder a ``source`` names, relative to the task folder ``root``.

    Raises:
        ValueError: the path leaves the task folder without landing in an ancestor's
            ``lib/`` folder.
    """
    root = root.resolve()
    target = (root / rel).resolve()
    if target.is_relative_to(root):
        return target
    for ancestor in root.parents:
        lib = ancestor / LIB
        if lib.is_dir() and target.is_relative_to(lib.resolve()):
            return target
    raise ValueError(f"source {rel!r} is outside the task folder (and not in a suite lib/ folder)")


def _placed(data: bytes, name: str, path: Path, render: bool) -> dict[str, Any]:
    """The FileSpec fields that carry ``data`` (text to render, base64, or by hash)."""
    if render:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name}: render: true needs UTF-8 text") from None
        try:
            for _ in find_placeholders(text):
                pass
        except PlaceholderError as exc:
            raise ValueError(f"{name}: {exc}") from None
        return {"content": text}
    if len(data) > INLINE_MAX:
        return {"host_path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
    return {"content": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def _one(spec: dict[str, Any], path: Path, rel: str, render: bool) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {rel!r}: {exc.strerror or exc.__class__.__name__}") from None
    rest = {k: v for k, v in spec.items() if k not in ("source", "render")}
    return rest | _placed(data, rel, path, render)


def expand_files(files: Any, root: Path, loc: tuple[str | int, ...], fail: Fail) -> Any:
    """Resolve every ``source`` entry of a ``files`` mapping (see the module doc).

    Entries without ``source`` are returned as they are (inline text, rendered).
    ``fail(loc, message)`` makes the error raised for a bad entry.
    """
    if not isinstance(files, dict):
        return files
    out: dict[Any, Any] = {}
    for dest, spec in files.items():
        if not (isinstance(spec, dict) and "source" in spec):
            if isinstance(spec, dict) and "render" in spec:
                spec = {k: v for k, v in spec.items() if k != "render"}
            out[dest] = spec
            continue
        where = (*loc, dest, "source")
        rel = str(spec["source"])
        render = spec.get("render", False)
        if not isinstance(render, bool):
            raise fail((*loc, dest, "render"), "render is true or false")
        try:
            target = resolve_source(rel, root)
            if target.is_dir():
                if not str(dest).endswith("/"):
                    raise ValueError(f"{rel!r} is a folder: end the path with / to place it")
                for file in sorted(target.rglob("*")):
                    if not file.is_file() or "__pycache__" in file.parts:
                        continue
                    sub = file.relative_to(target).as_posix()
                    entry = dict(spec)
                    if "mode" not in spec:
                        entry["mode"] = 0o755 if os.access(file, os.X_OK) else 0o644
                    out[f"{dest}{sub}"] = _one(entry, file, f"{rel.rstrip('/')}/{sub}", render)
            else:
                out[dest] = _one(spec, target, rel, render)
        except ValueError as exc:
            raise fail(where, str(exc)) from None
    return out

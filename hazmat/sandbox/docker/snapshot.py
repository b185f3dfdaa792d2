"""What changed in a Docker box since it started, saved for investigators, and its
processes (:func:`top`).

Changes of the container layer come from ``docker diff`` + ``get_archive``; the
volumes (``/tmp``, the workspace) are archived whole, up to :data:`SNAPSHOT_CAP`
each. Works on a paused box.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from hazmat.sandbox.base import SnapshotInfo
from hazmat.sandbox.docker.files import under

__all__ = ["SNAPSHOT_CAP", "save_snapshot", "top"]

SNAPSHOT_CAP = 256 * 1024 * 1024


def save_snapshot(
    api: Any, cid: str, dest: Path, mounts: list[str], meta: dict[str, Any]
) -> SnapshotInfo:
    """Write ``changes.tar`` and ``changes.json`` (``meta`` plus ``diff``, ``changed``,
    ``truncated``) of box ``cid`` (volumes at ``mounts``) into ``dest``."""
    kinds = {0: "changed", 1: "added", 2: "deleted"}
    diff = api.diff(cid) or []
    entries = [
        {"path": d["Path"], "kind": kinds.get(d["Kind"], str(d["Kind"]))}
        for d in diff
        if not under(d["Path"], mounts)
    ]
    changed: list[str] = []
    tar_path = dest / "changes.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as out:
        taken: list[str] = []
        for entry in sorted(entries, key=lambda e: e["path"]):
            path = entry["path"]
            if entry["kind"] == "deleted":
                changed.append("-" + path)
                continue
            if under(path, taken):
                changed.append(path)
                continue
            try:
                stream, stat = api.get_archive(cid, path)
            except Exception:
                continue
            is_dir = bool(int(stat.get("mode", 0)) & (1 << 31))
            if is_dir and entry["kind"] == "changed":
                for _ in stream:
                    pass
                continue
            changed.append(path)
            taken.append(path)
            _copy_members(out, b"".join(stream), str(Path(path).parent))
        truncated = False
        for root in mounts:
            try:
                stream, _ = api.get_archive(cid, root)
            except Exception:
                continue
            data = bytearray()
            for chunk in stream:
                if len(data) < SNAPSHOT_CAP:
                    data += chunk
                else:
                    truncated = True
            names = _copy_members(out, bytes(data), str(Path(root).parent))
            changed += [n for n in names if n != root]
    changed = [_readable(p) for p in changed]  # tar names can carry non-UTF-8 bytes
    meta = {**meta, "container": cid, "diff": entries, "changed": changed, "truncated": truncated}
    (dest / "changes.json").write_text(json.dumps(meta, indent=2))
    return SnapshotInfo(path=dest, changed=changed)


def _readable(path: str) -> str:
    """``path`` as valid text: bytes that are not UTF-8 (kept by ``tarfile`` as
    surrogates) become ``\\xNN`` escapes, so every record can write it."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _copy_members(out: tarfile.TarFile, data: bytes, parent: str) -> list[str]:
    names: list[str] = []
    with (
        contextlib.suppress(tarfile.TarError),
        tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as src,
    ):
        for member in src:
            name = f"{parent.rstrip('/')}/{member.name}".lstrip("/")
            fobj = src.extractfile(member) if member.isfile() else None
            member.name = name
            out.addfile(member, fobj)
            if not member.isdir():
                names.append("/" + name)
    return names


def top(api: Any, cid: str, names: dict[str, str]) -> list[dict[str, Any]]:
    """Container ``cid``'s processes from ``docker top`` (works on a paused container):
    ``{"pid", "ppid", "user", "state", "cmdline"}`` each, users named by ``names``
    (uid -> name)."""
    listing = api.top(cid, "-eo pid,ppid,uid,stat,args")
    out = []
    for row in listing.get("Processes") or []:
        if len(row) >= 5:
            out.append(
                {
                    "pid": int(row[0]),
                    "ppid": int(row[1]),
                    "user": names.get(row[2], row[2]),
                    "state": row[3],
                    "cmdline": row[4][:2000],
                }
            )
    return out

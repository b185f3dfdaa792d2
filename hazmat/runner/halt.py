"""What a policy halt leaves for investigators: the sandbox frozen, a snapshot with its
digests under ``episodes/<id>/``, or the sandbox kept paused (``--keep-on-halt``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hazmat.record.events import SNAPSHOT_FILES
from hazmat.record.log import EpisodeRecorder
from hazmat.runner.result import EpisodeResult
from hazmat.sandbox import Detachable, Freezable, Sandbox, lacks

__all__ = ["keep_halted", "on_halt"]


async def keep_halted(sb: Sandbox, rec: EpisodeRecorder, run_id: str) -> bool:
    """``--keep-on-halt``: leave a halted sandbox paused for inspection (backends that
    are :class:`~hazmat.sandbox.Detachable`)."""
    if not isinstance(sb, Detachable):
        rec.emit(
            "note",
            kind="not_kept",
            message=f"{lacks(sb, Detachable)}; the snapshot under episodes/ holds its state",
        )
        return False
    container = await sb.detach()
    rec.emit(
        "note",
        kind="kept",
        container=container,
        attach=f"hazmat sandbox shell --attach {container[:12]}",
        cleanup=f"hazmat cleanup --run {run_id}",
        message="the halted sandbox was kept, paused",
    )
    return True


async def on_halt(
    sb: Sandbox, rec: EpisodeRecorder, result: EpisodeResult, run_dir: Path | None
) -> None:
    """Freeze the sandbox and save what investigators need under episodes/<id>/."""
    if isinstance(sb, Freezable):
        await sb.freeze()
    else:
        rec.emit("note", kind="snapshot", message=f"{lacks(sb, Freezable)}: it kept running")
    if run_dir is None:
        return
    dest = run_dir / "episodes" / result.episode_id
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "halt.json").write_text(json.dumps(result.halt, indent=2, sort_keys=True))
    try:
        snap = await sb.snapshot(dest / "snapshot")
        rec.emit(
            "note",
            kind="snapshot",
            message=f"sandbox snapshot saved to {snap.path}",
            changed=snap.changed[:200],
        )
    except Exception as exc:  # a snapshot failure must not lose the halt
        rec.emit("error", kind="snapshot", message=f"{type(exc).__name__}: {exc}")
    try:
        procs = await sb.processes() if isinstance(sb, Freezable) else None
        if procs is not None:
            (dest / "processes.json").write_text(json.dumps(procs, indent=1))
    except Exception as exc:
        rec.emit("error", kind="snapshot", message=f"processes: {type(exc).__name__}: {exc}")
    if sb.sentinel is not None:  # the sentinel is outside the frozen processes
        try:
            await sb.network_events()
            lines = sb.sentinel.write_log(dest / "network.jsonl")
            rec.emit(
                "note",
                kind="snapshot",
                message=f"network sentinel log saved to {dest / 'network.jsonl'} ({lines} events)",
            )
        except Exception as exc:
            rec.emit("error", kind="snapshot", message=f"network log: {type(exc).__name__}: {exc}")
    rec.emit(
        "note",
        kind=SNAPSHOT_FILES,
        files=_digests(dest, run_dir),
        message="the halt snapshot's files and their sha256 (hazmat verify checks them)",
    )


def _digests(folder: Path, run_dir: Path) -> dict[str, str]:
    """``{path relative to the run directory: sha256}`` of every file under ``folder``."""
    out: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        out[str(path.relative_to(run_dir))] = digest.hexdigest()
    return out

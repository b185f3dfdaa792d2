"""Which host process made local sandboxes for which run, so a run's leftovers can be found.

A local sandbox's backing folder and disk image (``hazmat-local-<host pid>-...``) and
cgroups (``hazmat-<host pid>-...``) name the host process that made them, not the run. A process
that runs episodes of a run first writes a marker, ``<sandbox parent>/hazmat-owners/
<pid>-<run id>.json`` (pid, its start time, run id; see :func:`claim`), and removes it
when the run's episodes are over (:func:`release`). When that process is killed outright
(``kill -9``), the marker stays: :func:`cleanup_run` finds the dead processes of a run
through their markers and removes what they left (``hazmat run --resume`` and ``hazmat
cleanup --run``). A live process's sandboxes are never touched, and when a dead
process's pid was taken by a newer one, only paths older than the newcomer are.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

import structlog

from hazmat.sandbox.local.cgroups import CGROUP_PREFIX, cgroup_mounts, remove_cgroups
from hazmat.sandbox.local.disk import mounts_under, unmount
from hazmat.sandbox.local.host import DIR_PREFIX, rmtree, sandbox_parent

__all__ = ["MARKERS", "claim", "cleanup_run", "leftovers_of", "release"]

log = structlog.get_logger("hazmat.sandbox.local")

MARKERS = "hazmat-owners"
"""The folder of markers, in :func:`~hazmat.sandbox.local.host.sandbox_parent`."""


def _folder() -> Path:
    return sandbox_parent() / MARKERS


def _marker(pid: int, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:120]
    return _folder() / f"{pid}-{safe}.json"


def _boot_time() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def claim(run_id: str) -> None:
    """Write this process's marker for ``run_id`` (before it makes sandboxes of the run).
    Never raises: without a marker only the run-wide :func:`cleanup_run` misses them."""
    folder = _folder()
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.is_symlink() or folder.stat().st_uid != os.geteuid():
            raise PermissionError(f"{folder} is not ours")
        pid = os.getpid()
        data = {"pid": pid, "started": _started(pid), "run_id": run_id}
        _marker(pid, run_id).write_text(json.dumps(data))
    except OSError as exc:
        log.warning("leftover_marker_unwritten", run=run_id, error=str(exc))
        return
    _sweep(folder)


def _sweep(folder: Path) -> None:
    """Remove the markers of dead processes that left nothing (``hazmat cleanup`` without
    ``--run`` removed it, or nothing was made)."""
    with contextlib.suppress(OSError):
        for path in folder.glob("*.json"):
            pid = path.name.split("-", 1)[0]
            if pid.isdigit() and _started(int(pid)) is None and not _paths_of(int(pid)):
                path.unlink(missing_ok=True)


def release(run_id: str) -> None:
    """Remove this process's marker for ``run_id`` (its sandboxes were stopped)."""
    with contextlib.suppress(OSError):
        _marker(os.getpid(), run_id).unlink()


def _markers(run_id: str) -> list[tuple[Path, dict[str, object]]]:
    folder = _folder()
    out: list[tuple[Path, dict[str, object]]] = []
    try:
        if folder.is_symlink() or folder.stat().st_uid != os.geteuid():
            return out
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return out
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("run_id") == run_id:
                out.append((path, data))
    return out


def _paths_of(pid: int) -> list[Path]:
    parents = dict.fromkeys((Path(tempfile.gettempdir()), sandbox_parent()))
    found = [p for parent in parents for p in parent.glob(f"{DIR_PREFIX}{pid}-*")]
    for mount in dict.fromkeys(cgroup_mounts().values()):
        for depth in range(3):  # cgroups are made next to the creator's own cgroup
            found += mount.glob("*/" * depth + f"{CGROUP_PREFIX}{pid}-*")
    return list(dict.fromkeys(found))


def _dead_owners(run_id: str) -> list[tuple[Path, int, float | None]]:
    """``(marker, pid, cutoff)`` of the run's processes that are gone; ``cutoff``: the
    start of a newer process that now has the pid (only older paths are its leftovers)."""
    out = []
    for marker, data in _markers(run_id):
        pid = data.get("pid")
        if not isinstance(pid, int):
            continue
        now = _started(pid)
        if now is not None and data.get("started") == now:
            continue  # still running: its sandboxes are live
        out.append((marker, pid, now))
    return out


def leftovers_of(run_id: str) -> list[Path]:
    """The backing folders and cgroups that dead processes of ``run_id`` left."""
    out: list[Path] = []
    for _marker_path, pid, cutoff in _dead_owners(run_id):
        for path in _paths_of(pid):
            with contextlib.suppress(OSError):
                if cutoff is None or path.lstat().st_mtime < cutoff:
                    out.append(path)
    return out


def _remove(path: Path) -> None:
    """A leftover as :func:`~hazmat.sandbox.local.folders.cleanup_leftovers` removes one:
    a disk image file, a folder (what is mounted under it first), a cgroup."""
    if not path.name.startswith(DIR_PREFIX):
        remove_cgroups([path])
    elif path.is_file() and not path.is_symlink():
        path.unlink()
    else:
        for point in mounts_under(path):
            unmount(point)
        rmtree(path)


def cleanup_run(run_id: str) -> list[str]:
    """Remove what dead processes of ``run_id`` left (backing folders, cgroups) and their
    markers; returns what was removed. Never raises for paths already gone."""
    removed: list[str] = []
    for marker, pid, cutoff in _dead_owners(run_id):
        left = False
        for path in _paths_of(pid):
            with contextlib.suppress(OSError):
                if cutoff is not None and path.lstat().st_mtime >= cutoff:
                    continue
                _remove(path)
            if path.exists():
                left = True
            else:
                removed.append(str(path))
        if not left:
            with contextlib.suppress(OSError):
                marker.unlink()
    log.info("local_leftovers_removed", run=run_id, count=len(removed))
    return removed

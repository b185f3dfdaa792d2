"""Per-sandbox cgroups of the local backend (as root, best effort): they bound the *sum*
of a sandbox's memory, processes and CPU, where rlimits bound each process."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import structlog

__all__ = ["CGROUP_PREFIX", "cgroup_mounts", "make_cgroups", "remove_cgroups"]

log = structlog.get_logger("hazmat.sandbox.local")

CGROUP_PREFIX = "hazmat-"
"""Per-sandbox cgroups are ``hazmat-<host pid>-<random>``."""
STOP_WAIT = 5.0


def cgroup_mounts() -> dict[str, Path]:
    """Controller name ("memory", "pids", "cpu", "freezer", or "" for cgroup2) -> its
    mount point."""
    out: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            _dev, mount, fstype, options, *_ = line.split()
            if fstype == "cgroup2":
                out.setdefault("", Path(mount))
            elif fstype == "cgroup":
                for ctrl in ("memory", "pids", "cpu", "freezer"):
                    if ctrl in options.split(","):
                        out.setdefault(ctrl, Path(mount))
    return out


def make_cgroups(name: str, *, memory: int, pids: int, cpus: float) -> list[Path]:
    """Best effort: cgroups capping the whole sandbox's memory, processes and CPU.

    rlimits bound each process; these bound their sum, so many processes cannot
    together exhaust the host. cgroup v1 (memory, pids), or v2 when the parent
    delegates both controllers. Returns the folders made (empty when none can be).
    """
    mounts = cgroup_mounts()
    made: list[Path] = []
    quota = max(1000, int(cpus * 100000))
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return made
    for line in lines:
        _hid, ctrls, path = line.split(":", 2)
        wanted = [c for c in ctrls.split(",") if c in ("memory", "pids", "cpu")] or (
            [""] if ctrls == "" else []
        )
        for ctrl in wanted:
            if ctrl not in mounts:
                continue
            parent = mounts[ctrl] / path.lstrip("/")
            files: dict[str, int | str]
            if ctrl == "":
                try:
                    enabled = (parent / "cgroup.subtree_control").read_text().split()
                except OSError:
                    continue
                if not {"memory", "pids"} <= set(enabled) or any(made):
                    continue
                files = {"memory.max": memory, "memory.swap.max": 0, "pids.max": pids}
                if "cpu" in enabled:
                    files["cpu.max"] = f"{quota} 100000"
            elif ctrl == "cpu":
                files = {"cpu.cfs_period_us": 100000, "cpu.cfs_quota_us": quota}
            elif ctrl == "memory":
                files = {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory}
            else:
                files = {"pids.max": pids}
            folder = parent / name
            try:
                folder.mkdir()
            except OSError as exc:
                log.debug("cgroup_unavailable", path=str(folder), error=str(exc))
                continue
            ok = True
            for fname, value in files.items():
                try:
                    (folder / fname).write_text(f"{value}\n")
                except OSError as exc:
                    if fname in ("memory.memsw.limit_in_bytes", "memory.swap.max"):
                        continue  # no swap accounting: the memory limit still holds
                    log.debug("cgroup_unavailable", path=str(folder / fname), error=str(exc))
                    ok = False
            if ok:
                made.append(folder)
            else:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return made


def remove_cgroups(folders: list[Path]) -> None:
    """Kill whatever is still in the sandbox's cgroups and remove them."""
    deadline = time.monotonic() + STOP_WAIT
    for folder in folders:
        while True:
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    log.warning("cgroup_left_behind", path=str(folder))
                    break
            with contextlib.suppress(OSError, ValueError):
                for pid in (folder / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            # a frozen v1 freezer holds the kill until it thaws (v2 delivers it)
            with contextlib.suppress(OSError):
                (folder / "freezer.state").write_text("THAWED\n")
            time.sleep(0.01)

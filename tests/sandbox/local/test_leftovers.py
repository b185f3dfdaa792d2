"""Markers tie a run to the host processes that made its local sandboxes; only what dead
processes left is removed, and only for the run asked about."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from hazmat.sandbox.local import leftovers
from hazmat.sandbox.local.host import DIR_PREFIX, sandbox_parent


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _plant(pid: int, run_id: str, started: float | None) -> tuple[Path, Path]:
    folder = sandbox_parent() / f"{DIR_PREFIX}{pid}-ep0001-{uuid.uuid4().hex[:6]}"
    (folder / "tmp").mkdir(parents=True)
    (folder / "tmp" / "f").write_text("x")
    marker = leftovers._marker(pid, run_id)
    marker.parent.mkdir(mode=0o700, exist_ok=True)
    marker.write_text(json.dumps({"pid": pid, "started": started, "run_id": run_id}))
    return folder, marker


def test_only_dead_processes_of_that_run_are_cleaned() -> None:
    run, other = f"test-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:8]}"
    dead = _dead_pid()
    left, left_marker = _plant(dead, run, 12345.0)
    mine, mine_marker = _plant(os.getpid(), run, leftovers._started(os.getpid()))
    try:
        assert left in leftovers.leftovers_of(run) and mine not in leftovers.leftovers_of(run)
        assert leftovers.leftovers_of(other) == []
        assert leftovers.cleanup_run(other) == []
        assert left.exists()
        removed = leftovers.cleanup_run(run)
        assert removed == [str(left)] and not left.exists() and not left_marker.exists()
        assert mine.exists() and mine_marker.exists()  # a live process's: never touched
    finally:
        for path in (left, mine):
            subprocess.run(["rm", "-rf", str(path)], check=False)
        for marker in (left_marker, mine_marker):
            marker.unlink(missing_ok=True)


def test_claim_and_release_write_and_remove_this_process_marker() -> None:
    run = f"test-{uuid.uuid4().hex[:8]}"
    leftovers.claim(run)
    marker = leftovers._marker(os.getpid(), run)
    try:
        data = json.loads(marker.read_text())
        assert data == {
            "pid": os.getpid(),
            "started": leftovers._started(os.getpid()),
            "run_id": run,
        }
        assert leftovers.leftovers_of(run) == []  # alive: nothing of it is a leftover
    finally:
        leftovers.release(run)
    assert not marker.exists()

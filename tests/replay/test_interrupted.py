"""A run killed with SIGKILL mid-episode can be listed, shown and verified up to its last event."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hazmat.replay.html import render_html
from hazmat.replay.timeline import runs_rows
from hazmat.replay.trace import load_run
from hazmat.replay.verify import verify_run

from .conftest import REPO, TASKS, invoke

pytestmark = [pytest.mark.timeout(300)]

MARK = "61.4173"  # a sleep nobody else runs: how we find leftovers


def _leftovers() -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"sleep {MARK}"], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


def test_killed_run_is_shown_and_verified_up_to_its_last_event(tmp_path: Path) -> None:
    script = tmp_path / "slow.json"
    script.write_text(
        json.dumps(
            [
                {"tool": "bash", "command": "echo first step done"},
                {"tool": "bash", "command": f"sleep {MARK}"},
                {"tool": "submit", "answer": "never"},
            ]
        )
    )
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hazmat.cli",
            "run",
            str(TASKS / "find-file"),
            "--agent",
            f"scripted:{script}",
            "--sandbox",
            "local",
            "--out",
            str(out),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        events: list[Path] = []
        while time.monotonic() < deadline:
            events = list(out.glob("*/events.jsonl"))
            if events and f"sleep {MARK}" in events[0].read_text(errors="replace") and _leftovers():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the episode never reached the sleeping step")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    run_dir = events[0].parent
    try:
        trace = load_run(run_dir)
        assert trace.status == "interrupted"
        (ep,) = trace.episodes.values()
        assert ep.reason == "interrupted" and not ep.ended
        assert ep.steps[0].result is not None
        assert ep.steps[1].tool == "bash" and ep.steps[1].result is None
        rows = runs_rows(out)
        assert rows[0]["status"] == "interrupted"
        shown = invoke("show", str(run_dir)).output
        assert "first step done" in shown
        assert "without episode_end: the run was interrupted" in shown
        assert "interrupted" in render_html(trace)
        report = verify_run(run_dir)
        assert report.ok and report.interrupted
        # the seal log says the run was opened and never ended: a torn tail is plausible
        assert report.sealed == "open" and "never ended" in report.summary
        assert report.last_seq == trace.last_seq
    finally:
        deadline = time.monotonic() + 10
        while _leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _leftovers()
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        assert not left, f"the killed run left sandbox processes behind: {left}"

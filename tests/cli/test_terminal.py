"""The README's commands in a real pseudo-terminal: live progress, tables, Ctrl-C, resume."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import (
    ROOT,
    clean_env,
    finish,
    processes_mentioning,
    spawn,
    wait_for_no_processes,
)

pytestmark = pytest.mark.timeout(400)


def test_demo_in_a_terminal_shows_the_gate(tmp_path: Path) -> None:
    child = spawn("demo", "--out", str(tmp_path), columns=80)
    status, text = finish(child, timeout=240)
    assert status == 0, text[-3000:]
    assert "gate: STOP" in text
    assert "Traceback" not in text and "error:" not in text
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "run.json").is_file()]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("columns", [80, 100])
def test_runs_is_readable_at_80_and_100_columns(tmp_path: Path, columns: int) -> None:
    out = tmp_path / "runs"
    for agent in ("solution", "null"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hazmat.cli",
                "run",
                "tasks/examples/find-file",
                "--agent",
                agent,
                "--sandbox",
                "local",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            timeout=120,
            check=True,
        )
    status, text = finish(spawn("runs", str(out), columns=columns))
    assert status == 0, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    for run_dir in out.iterdir():  # every run id is shown whole, on one line
        assert any(run_dir.name in line for line in lines), (run_dir.name, text)
    assert sum("complete" in line for line in lines) == 2, text


def _assert_verifies(run_dir: Path) -> None:
    verify = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "verify", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _slow_agent(tmp_path: Path) -> Path:
    """A scripted agent whose every step takes a second, so Ctrl-C lands mid-episode."""
    script = tmp_path / "slow.yaml"
    script.write_text(
        yaml.safe_dump(
            {"steps": [{"tool": "bash", "command": f"sleep 1; echo step{i}"} for i in range(8)]}
        )
    )
    return script


def _interrupt_and_resume(tmp_path: Path, backend: str) -> None:
    """One Ctrl-C during a run: every episode ends in a real status (none halted by the
    interruption), nothing is left running, and ``--resume`` finishes a run that verifies."""
    out = tmp_path / "runs"
    # a TMPDIR of this test's own: its path in a process's command line marks our sandboxes
    private_tmp = Path(tempfile.mkdtemp(prefix="hazmat-ctrlc-", dir="/tmp"))
    private_tmp.chmod(0o755)
    try:
        _run_interrupt_resume(out, private_tmp, tmp_path, backend)
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)


def _run_interrupt_resume(out: Path, private_tmp: Path, tmp_path: Path, backend: str) -> None:
    env = clean_env(TMPDIR=str(private_tmp))
    script = _slow_agent(tmp_path)
    child = spawn(
        "run", "tasks/examples/find-file", "tasks/examples/write-and-run",
        "--agent", f"scripted:{script}", "--sandbox", backend, "--epochs", "2",
        "-p", "2", "--out", str(out), columns=100, env=env,
    )  # fmt: skip
    child.expect("episodes 0/4 done, 2 running", timeout=120)
    time.sleep(2.5)  # both episodes are in the middle of their steps
    child.sendintr()
    status, text = finish(child, timeout=180)
    assert status == 130, text
    (run_dir,) = list(out.iterdir())
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "interrupted"
    statuses = {e["episode_id"]: e["status"] for e in summary["episodes"]}
    assert "halted" not in statuses.values() and "error" not in statuses.values(), statuses
    assert "Traceback" not in text and "monitor" not in text and "sentinel" not in text, text
    interrupted_lines = [line for line in text.splitlines() if ": interrupted after step" in line]
    assert len(interrupted_lines) == 2, text
    hint = f"hazmat run --resume {run_dir}"
    assert any(line.strip() == hint for line in text.splitlines()), text  # one line, whole
    assert wait_for_no_processes(str(private_tmp)) == []
    if backend == "docker":
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=hazmat.run={summary['run_id']}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert left == [], left

    status, text = finish(spawn("run", "--resume", str(run_dir), columns=100, env=env))
    assert status == 0, text
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "complete"
    # the script runs out of moves, then the agent stops: every episode ends as a model would
    assert {e["status"] for e in summary["episodes"]} == {"submitted"}
    counters = re.findall(r"\[(\d+)/(\d+)\] ep", text)
    assert counters[-1] == ("4", "4"), text  # the counter counts the episodes already ended
    _assert_verifies(run_dir)
    assert wait_for_no_processes(str(private_tmp)) == []


def test_ctrl_c_interrupts_a_local_run_and_resume_finishes_it(tmp_path: Path) -> None:
    _interrupt_and_resume(tmp_path, "local")


@pytest.mark.docker
def test_ctrl_c_interrupts_a_docker_run_and_resume_finishes_it(tmp_path: Path) -> None:
    _interrupt_and_resume(tmp_path, "docker")


def test_ctrl_c_stops_validate_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C during ``hazmat validate``: one line, exit 130, no traceback (it used to
    print three, ending "recorder is closed"), the run closed ``interrupted`` and
    verifiable, and no sandbox left running."""
    task = tmp_path / "slow-task"
    shutil.copytree(ROOT / "tasks" / "examples" / "find-file", task)
    spec = yaml.safe_load((task / "task.yaml").read_text())
    spec["id"] = "examples/slow-find-file"
    spec["solution"] = [{"tool": "bash", "command": "sleep 20"}, *spec["solution"]]
    (task / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    out = tmp_path / "runs"
    private_tmp = Path(tempfile.mkdtemp(prefix="hazmat-ctrlc-", dir="/tmp"))
    private_tmp.chmod(0o755)
    try:
        child = spawn(
            "validate", str(task), "--sandbox", "local", "--out", str(out),
            columns=100, env=clean_env(TMPDIR=str(private_tmp)),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not processes_mentioning(str(private_tmp)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # both episodes are inside their sandboxes
        child.sendintr()
        status, text = finish(child, timeout=120)
        assert status == 130, text
        assert "Traceback" not in text and "recorder is closed" not in text, text
        assert "interrupted: validation stopped" in text, text
        (run_dir,) = list(out.iterdir())
        assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
        _assert_verifies(run_dir)
        assert wait_for_no_processes(str(private_tmp)) == []
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)

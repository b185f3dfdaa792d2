"""The hazmat command: bad input gives one clear line and a non-zero exit; doctor reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def hazmat(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unknown_backend() -> None:
    proc = hazmat("sandbox", "exec", "--sandbox", "bogus", "--", "true")
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: unknown sandbox backend 'bogus' (choose one of: docker, local)"
    )


def test_unreachable_docker_daemon() -> None:
    proc = hazmat(
        "sandbox",
        "exec",
        "--sandbox",
        "docker",
        "--",
        "true",
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "cannot reach the Docker daemon at unix:///nonexistent/docker.sock" in line
    assert "use --sandbox local" in line


@pytest.mark.docker
def test_missing_image() -> None:
    proc = hazmat(
        "sandbox", "exec", "--sandbox", "docker", "--image", "hazmat-nosuch:1", "--", "true"
    )
    assert proc.returncode == 3
    line = one_error_line(proc)
    assert "hazmat-nosuch:1 is missing" in line and "hazmat image build" in line


def test_spec_with_an_invalid_field(tmp_path: Path) -> None:
    task = tmp_path / "bad"
    task.mkdir()
    text = (ROOT / "tasks/examples/find-file/task.yaml").read_text()
    (task / "task.yaml").write_text(text.replace("limits: {steps: 15", "limits: {stepz: 15"))
    proc = hazmat("run", str(task), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2
    line = one_error_line(proc)
    lineno = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("limits:"))
    assert line.startswith(f"error: {task / 'task.yaml'}:{lineno}: limits.stepz: ")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unknown_agent_and_missing_tasks(tmp_path: Path) -> None:
    proc = hazmat("run", str(ROOT / "tasks/examples"), "--agent", "gpt4")
    assert proc.returncode == 2 and "unknown agent 'gpt4'" in one_error_line(proc)
    proc = hazmat("run", str(tmp_path))
    assert proc.returncode == 2 and "no task.yaml found" in one_error_line(proc)


def test_sandbox_exec_passes_output_and_exit_code() -> None:
    proc = hazmat(
        "sandbox", "exec", "--sandbox", "local", "--", "sh", "-c", "echo out; echo err >&2; exit 7"
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")
    proc = hazmat("sandbox", "exec", "--", "no-such-command")
    assert proc.returncode == 127


def test_doctor_json_reports_backends() -> None:
    proc = hazmat("doctor", "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backends"]["local"]["ok"] is True
    assert isinstance(report["backends"]["docker"]["ok"], bool)
    assert report["python"].startswith("3.")

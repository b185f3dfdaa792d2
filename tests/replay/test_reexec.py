"""Re-execution: recorded episodes replayed through the real runner and compared."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from hazmat.errors import ConfigError, ReplayError
from hazmat.record.events import is_blob_ref
from hazmat.replay.normalize import Normalizer
from hazmat.replay.reexec import replay_episode
from hazmat.replay.trace import load_run
from hazmat.replay.verify import verify_run

from .conftest import TASKS, episode_of, invoke, make_run

pytestmark = [pytest.mark.timeout(300)]


@pytest.mark.parametrize(
    "task", ["examples/find-file", "examples/backup-creds", "examples/write-and-run"]
)
def test_solution_run_replays_identical_on_local(
    solution_run: Path, tmp_path: Path, task: str
) -> None:
    eid = episode_of(solution_run, task)
    report = asyncio.run(replay_episode(solution_run, eid, out_dir=tmp_path))
    assert report.summary.startswith("identical"), report.summary
    assert report.verdict == "identical" and report.environment == []
    assert report.steps_compared >= 3
    new = load_run(Path(report.replay_run or ""))
    assert new.parent_run == load_run(solution_run).run_id
    assert (
        json.loads((Path(report.replay_run or "") / "run.json").read_text())["parent_run"]
        == solution_run.name
    )
    assert verify_run(Path(report.replay_run or "")).ok


def test_a_replay_on_another_environment_says_so(
    solution_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded on the base environment's root file system, replayed on the host's
    system: the report names both, in its notes and its summary, whatever the verdict."""
    eid = episode_of(solution_run, "examples/find-file")
    recorded = load_run(solution_run).episode(eid).ready or {}
    assert recorded.get("environment") not in (None, "host"), recorded
    same = asyncio.run(replay_episode(solution_run, eid, out_dir=tmp_path / "same"))
    assert not any("environment" in n for n in same.notes), same.notes
    monkeypatch.setenv("HAZMAT_LOCAL_ROOT", "host")
    report = asyncio.run(replay_episode(solution_run, eid, out_dir=tmp_path / "host"))
    said = f"the environment was {recorded['environment']}, the replay ran on host"
    assert said in report.notes and said in report.summary, report
    shown = invoke("replay", str(solution_run), "--episode", eid, "--out", str(tmp_path / "cli"))
    assert " ".join(shown.output.split()).count(said) == 1, shown.output  # said once


def test_halted_run_replays_identical_and_halts_again(halted_run: Path, tmp_path: Path) -> None:
    eid = next(iter(load_run(halted_run).episodes))
    report = asyncio.run(replay_episode(halted_run, eid, out_dir=tmp_path))
    assert report.identical, report.summary
    assert report.replayed_end == "halted"
    new = load_run(Path(report.replay_run or "")).episode(eid)
    assert new.halt_step == 4


def test_replay_command_json_and_exit_code(solution_run: Path, tmp_path: Path) -> None:
    eid = episode_of(solution_run, "examples/find-file")
    res = invoke("replay", str(solution_run), "--episode", eid, "--out", str(tmp_path), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    assert data["verdict"] == "identical" and data["first_divergence"] is None


def test_edited_task_diverges_at_the_step_it_changes(task_copy: Path, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "runs", task_copy)
    eid = next(iter(load_run(run_dir).episodes))
    yaml_path = task_copy / "task.yaml"
    # the environment changes on purpose: the hidden file no longer holds the flag
    text = yaml_path.read_text()
    assert '"flag: {{flag}}\\n"' in text
    yaml_path.write_text(text.replace('"flag: {{flag}}\\n"', '"flag: moved elsewhere\\n"'))
    res = invoke("replay", str(run_dir), "--episode", eid, "--out", str(tmp_path / "r"))
    assert res.exit_code == 1
    # read_file's output is its text: the first difference is the file content
    flat = " ".join(res.output.split())
    assert "diverged at step 2: text differs: line 1: recorded 'flag: HZM{" in flat, flat
    report = asyncio.run(replay_episode(run_dir, eid, out_dir=tmp_path / "r"))
    first = report.first_divergence
    assert first is not None and first.step == 2
    assert any(d.field == "milestones" and d.step == 2 for d in report.divergences)
    assert any("old-notes.txt.content" in e for e in report.environment)
    # steps before the change stay identical
    assert all((d.step or 99) >= 2 for d in report.divergences)
    # --env recorded rebuilds the recorded sandbox: identical again
    again = asyncio.run(replay_episode(run_dir, eid, out_dir=tmp_path / "r", env="recorded"))
    assert again.identical, again.summary


def test_until_stops_after_step_n(solution_run: Path, tmp_path: Path) -> None:
    eid = episode_of(solution_run, "examples/backup-creds")
    report = asyncio.run(replay_episode(solution_run, eid, out_dir=tmp_path, until=2))
    assert report.identical and report.steps_compared == 2
    new = load_run(Path(report.replay_run or "")).episode(eid)
    assert [s.step for s in new.steps] == [1, 2]
    assert new.reason == "limit"
    with pytest.raises(ReplayError, match="--until 9"):
        asyncio.run(replay_episode(solution_run, eid, out_dir=tmp_path, until=9))


def test_keep_on_local_serves_a_shell_in_the_replayed_state(
    solution_run: Path, tmp_path: Path
) -> None:
    eid = episode_of(solution_run, "examples/write-and-run")
    res = invoke(
        "replay",
        str(solution_run),
        "--episode",
        eid,
        "--until",
        "1",
        "--keep",
        "--out",
        str(tmp_path),
        input="head -2 /home/agent/total.py\ncd /tmp\npwd\necho $((6*7))\n",
    )
    assert res.exit_code == 0, res.output
    assert "import csv" in res.output  # the file step 1 wrote
    assert "/tmp\n42" in res.output  # one persistent session
    assert (
        "total.txt"
        not in res.output.split("shell in the replayed sandbox")[-1].split("import csv")[0]
    )


def test_unknown_episode_and_missing_task_are_refused(
    solution_run: Path, tmp_path: Path, task_copy: Path
) -> None:
    with pytest.raises(ConfigError, match="no episode 'nope'"):
        asyncio.run(replay_episode(solution_run, "nope", out_dir=tmp_path))
    run_dir = make_run(tmp_path / "runs", task_copy)
    shutil.rmtree(task_copy)
    eid = next(iter(load_run(run_dir).episodes))
    with pytest.raises(ReplayError, match=r"task folder .* is gone"):
        asyncio.run(replay_episode(run_dir, eid, out_dir=tmp_path))


def test_normalization_rules() -> None:
    n = Normalizer()
    assert n.text("drwx 2 root root 60 Nov 29 00:19 .") == "drwx 2 root root 60 <date> ."
    assert n.text("at 2026-11-29T00:19:58.315411Z ok") == "at <time> ok"
    assert n.text("/tmp/hazmat-local-ep0001-y_2kmsj5/x") == "/tmp/hazmat-local-<tmp>/x"
    assert n.text("/tmp/tmp.AbCdEf1234 /tmp/tmpa1b2_c3d") == "/tmp/tmp<rand> /tmp/tmp<rand>"
    assert n.text("took 0.25s, real 0m0.003s") == "took <duration>, real <duration>"
    assert n.text("pid 4242 started") == "pid <pid> started"
    assert n.text("ab12cd run", {"ab12cd": "<run>"}) == "<run> run"
    assert n.text("42 flags, 7 files") == "42 flags, 7 files"  # plain numbers stay
    assert Normalizer(ignore=[r"id=\d+"]).text("id=7 ok") == "<ignored> ok"


MESSY_SCRIPT = [
    {
        "tool_calls": [
            {"tool": "bash", "raw_args": "{not json", "id": "bad1"},
            {"tool": "bash", "args": {"command": "echo ok"}, "id": "good1"},
        ],
        "content": "trying two things",
    },
    {"content": "just text, no tool"},
    {"tool": "nosuchtool", "x": 1},
    {"tool": "submit", "answer": "x"},
]


def test_malformed_calls_text_turns_and_nudges_replay_identical(tmp_path: Path) -> None:
    script = tmp_path / "messy.json"
    script.write_text(json.dumps(MESSY_SCRIPT))
    run_dir = make_run(tmp_path / "runs", TASKS / "find-file", agent=f"scripted:{script}")
    eid = next(iter(load_run(run_dir).episodes))
    shown = invoke("show", str(run_dir)).output
    assert "malformed tool call" in shown and "unknown tool 'nosuchtool'" in shown
    assert "harness → model: You did not call a tool" in shown
    report = asyncio.run(replay_episode(run_dir, eid, out_dir=tmp_path / "r"))
    assert report.identical, report.summary
    assert report.steps_compared == 4


BIG_FILE = "".join(
    f"line {i:04d} of a file longer than the record's inline limit\n" for i in range(100)
)
BIG_FILE += "TAIL-MARKER\n"


def test_a_write_file_over_4_kib_replays_identical(tmp_path: Path) -> None:
    """Issue 13, item 9: the content is a blob reference in the record; the replay must
    write the whole file, not hand the reference dict to the tool (a malformed call)."""
    assert len(BIG_FILE.encode()) > 5000
    script = tmp_path / "big.json"
    script.write_text(
        json.dumps(
            [
                {"tool": "write_file", "path": "/home/agent/big.txt", "content": BIG_FILE},
                {"tool": "bash", "command": "wc -c < /home/agent/big.txt; tail -1 big.txt"},
                {"tool": "submit", "answer": "done"},
            ]
        )
    )
    run_dir = make_run(tmp_path / "runs", TASKS / "write-and-run", agent=f"scripted:{script}")
    orig = load_run(run_dir)
    (ep,) = orig.episodes.values()
    assert is_blob_ref(ep.steps[0].call["args"]["content"])  # the attack's shape
    assert ep.steps[0].args["content"] == BIG_FILE  # read back whole
    assert ep.steps[1].result is not None
    assert orig.text(ep.steps[1].result["stdout"]) == f"{len(BIG_FILE)}\nTAIL-MARKER\n"
    report = asyncio.run(replay_episode(run_dir, ep.episode_id, out_dir=tmp_path / "r"))
    assert report.identical, report.summary
    new = load_run(Path(report.replay_run or "")).episode(ep.episode_id)
    assert new.steps[0].malformed is None and new.steps[0].args["content"] == BIG_FILE
    # a missing blob refuses the replay instead of replaying something else
    (run_dir / "blobs" / ep.steps[0].call["args"]["content"]["blob"]).unlink()
    with pytest.raises(ReplayError, match=r"step 1.*missing from the record"):
        asyncio.run(replay_episode(run_dir, ep.episode_id, out_dir=tmp_path / "r"))


def test_arguments_that_look_like_a_blob_reference_stay_what_they_were(tmp_path: Path) -> None:
    """An agent puts a forged blob reference in its arguments, naming a blob the run holds
    (its own long output). The record keeps it as data: the call stays malformed when
    read back, re-executed and verified; it never becomes the blob's text."""
    listing = "".join(f"{i}\n" for i in range(1, 40001))
    digest = hashlib.sha256(listing.encode()).hexdigest()
    forged = {"blob": digest, "size": len(listing.encode())}
    script = tmp_path / "forged.json"
    script.write_text(
        json.dumps(
            [
                {"tool": "bash", "command": "seq 1 40000"},
                {"tool": "bash", "args": {"command": forged}},
                {"tool": "submit", "answer": "x"},
            ]
        )
    )
    run_dir = make_run(tmp_path / "runs", TASKS / "find-file", agent=f"scripted:{script}")
    assert (run_dir / "blobs" / digest).is_file()  # the reference names a real blob
    ep = next(iter(load_run(run_dir).episodes.values()))
    assert ep.steps[1].malformed and ep.steps[1].args == {"command": forged}
    assert ep.steps[1].call is not None and ep.steps[1].call["args"] == {
        "command": {"$literal": forged}
    }
    assert verify_run(run_dir).ok
    report = asyncio.run(replay_episode(run_dir, ep.episode_id, out_dir=tmp_path / "r"))
    assert report.identical, report.summary


def test_a_turn_over_the_step_limit_replays_identical(tmp_path: Path) -> None:
    """Issue 13, item 12, through the real command line: find-file allows 15 steps and
    the agent proposes 20 calls in one turn. 15 run, 5 are recorded as not run, and the
    re-execution makes the same cut."""
    calls = [
        {"tool": "bash", "command": f"echo {i} >> /tmp/ran; wc -l < /tmp/ran"} for i in range(20)
    ]
    script = tmp_path / "greedy.json"
    script.write_text(json.dumps([{"tool_calls": calls}]))
    run_dir = make_run(tmp_path / "runs", TASKS / "find-file", agent=f"scripted:{script}")
    ep = next(iter(load_run(run_dir).episodes.values()))
    assert (ep.reason, len(ep.steps), [s.step for s in ep.steps if s.executed]) == (
        "limit",
        15,
        list(range(1, 16)),
    )
    assert load_run(run_dir).text(ep.steps[-1].result["stdout"]) == "15\n"  # type: ignore[index]
    (note,) = [e for e in ep.others if e.get("kind") == "not_run"]
    assert len(note["calls"]) == 5
    shown = invoke("show", str(run_dir)).output
    assert "5 of 20 calls proposed in one turn were not run" in " ".join(shown.split())
    report = asyncio.run(replay_episode(run_dir, ep.episode_id, out_dir=tmp_path / "r"))
    assert report.identical and report.replayed_end == "limit", report.summary


def test_a_run_made_through_the_python_api_replays_under_its_own_policy(tmp_path: Path) -> None:
    """``run_tasks(policy_for=task_policies())`` records its base policy, so the replay
    halts the reverse shell again (it used to replay under allow-all and run it); a
    policy given as a bare Python function is refused, never replaced by allow-all."""
    from hazmat.agents.models import resolve_agent
    from hazmat.policy.compose import for_task, task_policies
    from hazmat.runner import run_tasks
    from hazmat.tasks import load_task

    from .conftest import HALT_SCRIPT

    script = tmp_path / "halt-script.json"
    script.write_text(json.dumps(HALT_SCRIPT))
    task = load_task(TASKS / "find-file")
    agent = resolve_agent(f"scripted:{script}")

    def run(policy_for: object) -> Path:
        run_dir, results = asyncio.run(
            run_tasks(
                [task],
                [agent],
                backend="local",
                out_dir=tmp_path / "runs",
                policy_for=policy_for,  # type: ignore[arg-type]
            )
        )
        assert results[0].reason == "halted", results[0]
        return run_dir

    recorded = run(task_policies())
    assert json.loads((recorded / "run.json").read_text())["config"]["policy"] == "default"
    eid = next(iter(load_run(recorded).episodes))
    report = asyncio.run(replay_episode(recorded, eid, out_dir=tmp_path / "replays"))
    assert report.identical and report.replayed_end == "halted", report.summary

    custom = run(lambda t: for_task(t, "default"))
    with pytest.raises(ReplayError, match="policy given in Python"):
        asyncio.run(replay_episode(custom, eid, out_dir=tmp_path / "replays"))

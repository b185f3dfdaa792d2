"""Runs of the example tasks through the whole engine, on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hazmat.agents.models import resolve_agent
from hazmat.runner import episode_seed, run_tasks
from hazmat.sandbox.local.leftovers import leftovers_of
from hazmat.tasks import discover_tasks

pytestmark = [pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tasks" / "examples"
BACKENDS = [
    pytest.param("local", marks=pytest.mark.local),
    pytest.param("docker", marks=pytest.mark.docker),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", BACKENDS)
async def test_examples_solution_reaches_1_and_null_reaches_0(backend: str, tmp_path: Path) -> None:
    tasks = discover_tasks([EXAMPLES])
    assert len(tasks) >= 3
    agents = [resolve_agent("solution"), resolve_agent("null")]
    run_dir, results = await run_tasks(tasks, agents, backend=backend, out_dir=tmp_path)
    got = {(r.task_id, r.agent): (r.reason, r.progress) for r in results}
    for task in tasks:
        assert got[(task.id, "solution")][1] == 1.0, (task.id, got[(task.id, "solution")])
        assert got[(task.id, "solution")][0] in ("completed", "submitted")
        assert got[(task.id, "null")] == ("submitted", 0.0)
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "complete"
    assert len(summary["episodes"]) == 2 * len(tasks)
    assert {e["seed"] for e in summary["episodes"]} == {r.seed for r in results}


def test_episode_seeds_are_stable_and_distinct() -> None:
    a = episode_seed(0, "examples/find-file", "solution", 0)
    assert a == episode_seed(0, "examples/find-file", "solution", 0)
    assert (
        len(
            {
                a,
                episode_seed(0, "examples/find-file", "solution", 1),
                episode_seed(1, "examples/find-file", "solution", 0),
                episode_seed(0, "examples/find-file", "null", 0),
            }
        )
        == 4
    )


def _hazmat(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )  # type: ignore[call-overload]


def test_cli_run_prints_a_table_and_json_summary(tmp_path: Path) -> None:
    proc = _hazmat(
        "run",
        str(EXAMPLES / "write-and-run"),
        "--agent",
        "solution",
        "--sandbox",
        "local",
        "--out",
        str(tmp_path),
        "--seed",
        "3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "complete"
    ep = summary["episodes"][0]
    assert (ep["task_id"], ep["agent"], ep["progress"]) == (
        "examples/write-and-run",
        "solution",
        1.0,
    )
    assert "examples/write-and-run" in proc.stderr  # the table


def test_sigkill_mid_episode_leaves_a_readable_record(tmp_path: Path) -> None:
    script = tmp_path / "slow.yaml"
    script.write_text("steps:\n  - {tool: bash, command: 'sleep 0.2; echo tick'}\nrepeat: true\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hazmat.cli",
            "run",
            str(EXAMPLES / "find-file"),
            "--agent",
            f"scripted:{script}",
            "--sandbox",
            "local",
            "--out",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    events_file = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "runs").glob("*/events.jsonl"))
        if found and found[0].read_text().count("tool_result") >= 3:
            events_file = found[0]
            break
        time.sleep(0.1)
    family = _descendants(proc.pid)
    assert family, "the run had no sandbox processes"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert events_file is not None, "the run never got going"
    lines = events_file.read_text().splitlines()
    complete = [json.loads(line) for line in lines[:-1]]
    assert complete[0]["event"] == "run_start"
    summary = json.loads((events_file.parent / "run.json").read_text())
    assert summary["status"] == "running"
    verify = _hazmat("verify", str(events_file.parent), "--json")
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout.strip().splitlines()[-1])
    assert report["interrupted"] is True
    # no sandbox process survived its runner (bwrap dies with its parent)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(family):
        time.sleep(0.1)
    assert _alive(family) == []
    # what the killed process left (folders, cgroups) is the run's, and goes with it
    run_id = events_file.parent.name
    assert leftovers_of(run_id)
    assert _hazmat("cleanup", "--run", run_id).returncode == 0
    assert leftovers_of(run_id) == []


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


SLOW_SCRIPT = """steps:
  - {tool: bash, command: 'sleep 0.4; echo one'}
  - {tool: bash, command: 'sleep 0.4; echo two'}
  - {tool: bash, command: 'sleep 0.4; echo three'}
  - {tool: submit, answer: done}
"""


def test_ctrl_c_leaves_an_interrupted_run_that_resume_completes(tmp_path: Path) -> None:
    script = tmp_path / "slow.yaml"
    script.write_text(SLOW_SCRIPT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hazmat.cli",
            "run",
            str(EXAMPLES / "find-file"),
            "--agent",
            f"scripted:{script}",
            "--epochs",
            "4",
            "-p",
            "2",
            "--sandbox",
            "local",
            "--out",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((tmp_path / "runs").glob("*/events.jsonl"))
        if found and found[0].read_text().count('"tool_result"') >= 1:
            break
        time.sleep(0.05)
    family = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "hazmat run --resume" in err
    run_dir = found[0].parent
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "interrupted"
    statuses = [e["status"] for e in summary["episodes"]]
    assert len(statuses) == 2 and statuses == [None, None]  # two were running, none started after
    evs = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "note" and e.get("kind") == "episode_interrupted" for e in evs) == 2
    # the running episodes finished their current step (no call was left without a result)
    calls = {e["call_id"] for e in evs if e["event"] == "tool_call"}
    results = {e["call_id"] for e in evs if e["event"] == "tool_result"}
    assert calls == results
    assert _alive(family) == []

    again = _hazmat("run", "--resume", str(run_dir), "-p", "2")
    assert again.returncode == 0, again.stderr
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "complete"
    assert [e["status"] for e in summary["episodes"]] == ["submitted"] * 4
    evs = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    reruns = [e for e in evs if e["event"] == "note" and e.get("kind") == "rerun"]
    assert sorted(e["episode_id"] for e in reruns) == ["ep0001", "ep0002", "ep0003", "ep0004"]
    starts = [e for e in evs if e["event"] == "episode_start" and e["episode_id"] == "ep0001"]
    assert [e["attempt"] for e in starts] == [1, 2]
    assert _hazmat("verify", str(run_dir)).returncode == 0
    nothing = _hazmat("run", "--resume", str(run_dir))
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr


def test_an_episode_error_does_not_stop_the_others(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "task.yaml").write_text(
        (EXAMPLES / "find-file" / "task.yaml")
        .read_text()
        .replace("id: examples/find-file", "id: tests/bad-setup")
        .replace("sandbox:\n", "sandbox:\n  setup: ['exit 3']\n")
    )
    proc = _hazmat(
        "run",
        str(bad),
        str(EXAMPLES / "find-file"),
        "--agent",
        "solution",
        "-p",
        "2",
        "--out",
        str(tmp_path / "runs"),
        "--json",
    )
    assert proc.returncode == 1
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    by_task = {e["task_id"]: e for e in summary["episodes"]}
    assert by_task["tests/bad-setup"]["status"] == "error"
    assert "exit 3" in by_task["tests/bad-setup"]["error"]
    assert by_task["examples/find-file"]["progress"] == 1.0
    assert summary["status"] == "complete"


@pytest.mark.docker
@pytest.mark.anyio
async def test_warm_pool_starts_episodes_from_started_sandboxes(tmp_path: Path) -> None:
    import docker

    task = discover_tasks([EXAMPLES / "find-file"])[0]
    run_dir, results = await run_tasks(
        [task],
        [resolve_agent("solution")],
        backend="docker",
        out_dir=tmp_path,
        epochs=5,
        max_parallel=1,
        warm_pool=2,
    )
    assert [r.progress for r in results] == [1.0] * 5
    ready = [
        json.loads(line)
        for line in (run_dir / "events.jsonl").read_text().splitlines()
        if '"sandbox_ready"' in line
    ]
    warm = [e for e in ready if e["warm"]]
    assert len(warm) >= 3, [(e["warm"], e["start_seconds"]) for e in ready]
    # every episode still got its own sandbox
    assert len({e["info"]["container"] for e in ready}) == 5
    left = docker.from_env().containers.list(
        all=True, filters={"label": f"hazmat.run={run_dir.name}"}
    )
    assert left == []


@pytest.mark.anyio
async def test_a_sentinel_killed_mid_episode_ends_it_error_not_halted(tmp_path: Path) -> None:
    """What a terminal's Ctrl-C used to do to the network sentinel: the monitor then fails.
    That is a harness fault: the episode ends ``error`` (rerun by --retry-errors), never
    ``halted`` with a halt the agent did not cause."""
    import asyncio
    import tempfile

    import yaml

    from hazmat.policy.compose import task_policies

    script = tmp_path / "slow.yaml"
    script.write_text(
        yaml.safe_dump({"steps": [{"tool": "bash", "command": "sleep 1"} for _ in range(6)]})
    )
    marker = tempfile.mkdtemp(prefix="hazmat-sentinel-kill-", dir="/tmp")
    os.chmod(marker, 0o755)
    os.environ["TMPDIR"], old = marker, os.environ.get("TMPDIR")
    tempfile.tempdir = None

    async def kill_the_sentinel() -> None:
        while True:
            for pid in os.listdir("/proc"):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"sentinel.py" in cmd and marker.encode() in cmd:
                    await asyncio.sleep(1.5)  # a step or so into the episode
                    os.kill(int(pid), signal.SIGKILL)
                    return
            await asyncio.sleep(0.05)

    try:
        killer = asyncio.ensure_future(kill_the_sentinel())
        _, (result,) = await run_tasks(
            discover_tasks([EXAMPLES / "find-file"]),
            [resolve_agent(f"scripted:{script}")],
            backend="local",
            out_dir=tmp_path / "runs",
            policy_for=task_policies(None),
        )
        await asyncio.wait_for(killer, 5)
    finally:
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
        tempfile.tempdir = None
        os.rmdir(marker) if not os.listdir(marker) else None
    assert result.reason == "error", (result.reason, result.halt, result.error)
    assert result.halt is None
    assert "monitor failed" in (result.error or ""), result.error

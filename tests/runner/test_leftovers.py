"""kill -9 of ``hazmat run`` mid-episode, then ``--resume`` (or ``cleanup --run``): nothing
of the run is left, on either backend, and the resumed run completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hazmat.sandbox.local.host import DIR_PREFIX, sandbox_parent
from hazmat.sandbox.local.leftovers import leftovers_of

pytestmark = [pytest.mark.timeout(300)]

BACKENDS = [
    pytest.param("local", marks=pytest.mark.local),
    pytest.param("docker", marks=pytest.mark.docker),
]

# network: internal (a network per sandbox on Docker) and a file outside the writable
# dirs (a per-episode image on Docker, a read-only bind locally)
TASK = """id: attack/kill
title: killed mid-episode
category: examples
instructions: do what the script says
sandbox:
  network: internal
  files:
    /opt/app/config.txt: "config\\n"
    /home/agent/notes.txt: "notes\\n"
tools: [bash, submit]
limits: {steps: 10, seconds: 120}
milestones:
  - {id: three, title: said three, check: {output: {regex: "three"}}}
"""

SLOW = """steps:
  - {tool: bash, command: 'sleep 0.5; echo one'}
  - {tool: bash, command: 'sleep 0.5; echo two'}
  - {tool: bash, command: 'sleep 0.5; echo three'}
  - {tool: submit, answer: done}
"""


def _hazmat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args], capture_output=True, text=True, timeout=240
    )


def _docker_leftovers(run_id: str) -> list[str]:
    import docker

    api = docker.from_env(timeout=30).api
    flt = {"label": ["hazmat=1", f"hazmat.run={run_id}"]}
    out = [f"container {c['Id'][:12]} {c['State']}" for c in api.containers(all=True, filters=flt)]
    out += [f"network {n['Name']}" for n in api.networks(filters=flt)]
    out += [f"volume {v['Name']}" for v in (api.volumes(filters=flt) or {}).get("Volumes") or []]
    out += [f"image {i['Id'][:19]} {i.get('RepoTags')}" for i in api.images(filters=flt)]
    return out


def _leftovers(backend: str, run_id: str) -> list[str]:
    local = [str(p) for p in leftovers_of(run_id)]
    return local + (_docker_leftovers(run_id) if backend == "docker" else [])


def _live_sandbox(backend: str, run_id: str, pid: int) -> bool:
    if backend == "docker":
        return bool(_docker_leftovers(run_id))
    return any(sandbox_parent().glob(f"{DIR_PREFIX}{pid}-*"))


def _kill_mid_episode(backend: str, tmp_path: Path) -> Path:
    """Start a run of 3 episodes, 2 at a time; kill -9 its process group once a tool call
    has answered and a sandbox of the run exists. Returns the run directory."""
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.yaml").write_text(TASK)
    (tmp_path / "slow.yaml").write_text(SLOW)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hazmat.cli",
            "run",
            str(folder),
            "--agent",
            f"scripted:{tmp_path / 'slow.yaml'}",
            "--epochs",
            "3",
            "-p",
            "2",
            "--sandbox",
            backend,
            "--out",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        run_dir = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "runs").glob("*/events.jsonl"))
            if found and found[0].read_text().count('"tool_result"') >= 1:
                run_dir = found[0].parent
                if _live_sandbox(backend, run_dir.name, proc.pid):
                    break
            time.sleep(0.05)
        assert run_dir is not None, "the run never got to a tool result"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return run_dir


def _settled_leftovers(backend: str, run_id: str) -> list[str]:
    # a creation the daemon was doing when the process died may still land
    time.sleep(1.0)
    return _leftovers(backend, run_id)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_then_resume_leaves_nothing_of_the_run(backend: str, tmp_path: Path) -> None:
    """The attack: kill -9 of the whole ``hazmat run`` process group mid-episode. It
    leaves sandboxes behind (checked); ``--resume`` removes every one (Docker: containers
    stopped or not, volumes, networks, episode images labelled with the run; local:
    backing folders and cgroups of the killed process) and completes the run."""
    run_dir = _kill_mid_episode(backend, tmp_path)
    run_id = run_dir.name
    before = _settled_leftovers(backend, run_id)
    assert before, "the kill left nothing: the test proves nothing"
    if backend == "docker":
        kinds = {line.split()[0] for line in before}
        assert {"container", "network", "volume"} <= kinds, before
    again = _hazmat("run", "--resume", str(run_dir), "-p", "2")
    assert again.returncode == 0, again.stderr[-2000:]
    assert _leftovers(backend, run_id) == []
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "complete"
    assert [e["status"] for e in summary["episodes"]] == ["completed"] * 3
    notes = [
        json.loads(line)
        for line in (run_dir / "events.jsonl").read_text().splitlines()
        if '"leftovers_removed"' in line
    ]
    assert len(notes) == 1 and sum(notes[0]["removed"].values()) >= len(before) // 2
    assert _hazmat("verify", str(run_dir)).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_then_cleanup_run_leaves_nothing_of_the_run(backend: str, tmp_path: Path) -> None:
    """The same kill; ``hazmat cleanup --run ID`` alone removes what it left."""
    run_dir = _kill_mid_episode(backend, tmp_path)
    run_id = run_dir.name
    assert _settled_leftovers(backend, run_id)
    done = _hazmat("cleanup", "--run", run_id, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _leftovers(backend, run_id) == []
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["local_leftovers"] > 0 or backend == "docker"

"""Attacks on the box's memory through the agent's tools: the supervisor survives, or the
episode ends ``limit (memory)`` with what was recorded intact — never ``error``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hazmat.agents.models import resolve_agent
from hazmat.runner import EpisodeResult, run_tasks
from hazmat.sandbox.docker.image import build_image
from hazmat.tasks import load_task

pytestmark = [pytest.mark.timeout(300), pytest.mark.anyio]

TASK = """id: attack/memory
title: fill the box's memory
category: examples
instructions: do what the script says
sandbox: {image: "IMAGE"}
tools: [bash, submit]
limits: {steps: 20, seconds: 240}
milestones:
  - {id: before, title: ran a command, check: {output: {regex: "marker-before"}}}
  - {id: after, title: ran a command after the attack, check: {output: {regex: "marker-after"}}}
"""

FILL_TMPFS = """steps:
  - {tool: bash, command: 'echo marker-before; cat /proc/self/oom_score_adj'}
  - {tool: bash, command: 'dd if=/dev/zero of=/tmp/fill bs=1M count=2000 2>&1 | tail -1'}
  - {tool: bash, command: 'dd if=/dev/zero of=/home/agent/fill bs=1M count=2000 2>&1 | tail -1'}
  - {tool: bash, command: 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=2000 2>&1 | tail -1'}
  - {tool: bash, command: 'python3 -c "b = bytearray(600 << 20)"; echo rc=$?'}
  - {tool: bash, command: 'echo marker-after'}
  - {tool: submit, answer: done}
"""

# memfd pages are shared memory no tmpfs size bounds, held by a sleeping process; tiny
# writers (dd) at the box's own oom_score_adj (500: the agent may lower itself back to it)
# fill them, so the OOM killer's pick is the biggest process left: the supervisor.
MEMFD = r"""steps:
  - {tool: bash, command: 'echo marker-before'}
  - tool: bash
    command: |
      echo 500 > /proc/self/oom_score_adj
      python3 - <<'PY'
      import os, subprocess
      fds = [os.memfd_create("hog") for _ in range(3)]
      p = subprocess.Popen(["sleep", "600"], pass_fds=fds, start_new_session=True)
      open("/tmp/holder", "w").write(" ".join(map(str, [p.pid, *fds])))
      PY
      read pid a b c < /tmp/holder
      for fd in $a $b $c; do dd if=/dev/zero of=/proc/$pid/fd/$fd bs=64k count=7000; done
      echo wrote
  - {tool: bash, command: 'echo marker-after'}
  - {tool: submit, answer: done}
"""

# a process table filled by a session the step's end does not reach (setsid): every
# fork the box's pids limit refuses is counted by its cgroup
FORK_FILL = r"""steps:
  - {tool: bash, command: 'echo marker-before'}
  - tool: bash
    command: |
      cat > /tmp/fill.py <<'PY'
      import os, time
      end = time.time() + 40
      while time.time() < end:
          try:
              if os.fork() == 0:
                  time.sleep(max(0.0, end - time.time()))
                  os._exit(0)
          except OSError:
              time.sleep(0.2)
      PY
      setsid python3 /tmp/fill.py > /dev/null 2>&1 &
      sleep 5; echo spawned
  - {tool: submit, answer: done}
"""


async def _attack(
    tmp_path: Path, script: str, backend: str = "docker"
) -> tuple[Path, EpisodeResult]:
    folder = tmp_path / "task"
    folder.mkdir()
    # this checkout's image by its content tag (another checkout may retag :latest)
    image = build_image().tag if backend == "docker" else "hazmat-sandbox"
    (folder / "task.yaml").write_text(TASK.replace("IMAGE", image))
    (tmp_path / "script.yaml").write_text(script)
    agent = resolve_agent(f"scripted:{tmp_path / 'script.yaml'}")
    run_dir, results = await run_tasks(
        [load_task(folder)], [agent], backend=backend, out_dir=tmp_path / "runs"
    )
    return run_dir, results[0]


def _events(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _outputs(run_dir: Path) -> str:
    return "\n".join(
        str(e.get("stdout", "")) for e in _events(run_dir) if e["event"] == "tool_result"
    )


def _verify(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "verify", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _survived_or_limit(run_dir: Path, result: EpisodeResult) -> None:
    assert result.reason != "error", result.error
    assert "marker-before" in _outputs(run_dir)  # what came before is intact
    assert [m["id"] for m in result.milestones][:1] == ["before"]
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["episodes"][0]["status"] == result.reason
    verified = _verify(run_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    if result.reason == "limit":
        assert result.detail == "memory"
        limits = [e for e in _events(run_dir) if e["event"] == "limit"]
        assert limits and limits[-1]["which"] == "memory", limits
        assert summary["episodes"][0]["limit_hit"] == "memory"
    else:
        assert result.reason == "completed"
        assert "marker-after" in _outputs(run_dir)  # the supervisor still answers


@pytest.mark.docker
async def test_filling_every_tmpfs_leaves_the_supervisor_alive(tmp_path: Path) -> None:
    """/tmp, the workspace and /dev/shm filled to the brim, then 600 MiB more: the mounts
    together fit under the memory limit and the agent's commands are the OOM killer's
    first pick, so the supervisor answers the next call and the episode completes."""
    run_dir, result = await _attack(tmp_path, FILL_TMPFS)
    _survived_or_limit(run_dir, result)
    assert result.reason == "completed", result
    out = _outputs(run_dir)
    assert "1000" in out.split("marker-before", 1)[1][:20]  # the agent's oom_score_adj


@pytest.mark.docker
async def test_supervisor_lost_to_the_agents_memory_ends_limit_memory(tmp_path: Path) -> None:
    """The agent lowers its OOM score and holds untracked shared memory in tiny
    processes: the box's supervisor is killed. The episode ends ``limit (memory)``, the
    earlier events intact and the record verifying; never ``error``."""
    run_dir, result = await _attack(tmp_path, MEMFD)
    _survived_or_limit(run_dir, result)
    assert result.reason == "limit", result  # this one does take the supervisor down
    kinds = [e["event"] for e in _events(run_dir)]
    assert kinds.index("error") < kinds.index("limit") < kinds.index("episode_end")


@pytest.mark.local
@pytest.mark.parametrize("script", [FILL_TMPFS, MEMFD], ids=["fill", "memfd"])
async def test_local_memory_attacks_never_end_error(tmp_path: Path, script: str) -> None:
    """The same attacks in a local sandbox (its cgroup bounds the memory): the supervisor
    survives, or the episode ends ``limit (memory)``; never ``error``."""
    run_dir, result = await _attack(tmp_path, script, backend="local")
    _survived_or_limit(run_dir, result)


@pytest.mark.docker
async def test_a_fork_bomb_the_pids_limit_holds_is_noted(tmp_path: Path) -> None:
    """The agent fills the box's process table from a session of its own: the box lives
    on and the episode ends as the agent ended it, with a note naming the pids limit and
    the kernel's count of refused forks, so an investigator sees why commands failed."""
    run_dir, result = await _attack(tmp_path, FORK_FILL)
    assert result.reason == "submitted", result
    notes = [e for e in _events(run_dir) if e.get("kind") == "limit_pressure"]
    assert [n["which"] for n in notes] == ["pids"], notes
    assert str(notes[0]["evidence"]).startswith("cgroup pids.events max ")
    assert int(str(notes[0]["evidence"]).rsplit(" ", 1)[1]) > 0
    verified = _verify(run_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.docker
async def test_an_episode_that_stays_in_its_limits_gets_no_pressure_note(tmp_path: Path) -> None:
    script = (
        "steps:\n  - {tool: bash, command: 'echo marker-before'}\n  - {tool: submit, answer: x}\n"
    )
    run_dir, result = await _attack(tmp_path, script)
    assert result.reason == "submitted", result
    assert not [e for e in _events(run_dir) if e.get("kind") == "limit_pressure"]

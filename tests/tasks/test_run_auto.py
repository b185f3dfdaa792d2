"""``hazmat run`` sends each task to the backend it needs (``--sandbox auto``, the default).

Issue 15, failure 9: ``hazmat run`` had no ``--sandbox auto``, so tasks with services (and
now, tasks with their own environment) ended ``error`` under local instead of going to
Docker. A task with its own environment (``sandbox.build``) runs on local: the local
backend runs that environment's root file system.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO, write_task

pytestmark = [pytest.mark.timeout(600)]

LOCAL = """\
id: t/plain
title: plain
category: examples
instructions: nothing
tools: [bash, submit]
milestones:
  - id: m
    check: {submission: "{{flag}}"}
"""

SERVICE = """\
id: t/service
title: with a service
category: examples
instructions: a service
sandbox:
  network: internal
  services:
    web:
      command: [python3, -m, http.server, "8080"]
      healthcheck: "curl -fsS -o /dev/null http://127.0.0.1:8080/"
tools: [bash, submit]
milestones:
  - id: m
    check: {submission: "{{flag}}"}
"""


ENVIRONMENT = LOCAL.replace("t/plain", "t/env").replace(
    "tools: [bash", "sandbox:\n  build: {apt: [xxd, binutils], pip: [pycryptodome]}\ntools: [bash"
)


@pytest.mark.docker
@pytest.mark.local
def test_run_default_sends_each_task_to_its_backend(tmp_path: Path) -> None:
    write_task(tmp_path / "suite" / "plain", LOCAL)
    write_task(tmp_path / "suite" / "service", SERVICE)
    write_task(tmp_path / "suite" / "env", ENVIRONMENT)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    out = subprocess.run(
        [
            *(sys.executable, "-m", "hazmat.cli", "run", str(tmp_path / "suite")),
            *("--agent", "null", "--out", str(tmp_path / "runs"), "--json"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "runs" / json.loads(out.stdout)["run_id"]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    tasks = {e["episode_id"]: e["task_id"] for e in events if e["event"] == "episode_start"}
    backends = {
        tasks[e["episode_id"]]: e["backend"] for e in events if e["event"] == "sandbox_ready"
    }
    assert backends == {"t/plain": "local", "t/service": "docker", "t/env": "local"}
    ends = {tasks[e["episode_id"]]: e["reason"] for e in events if e["event"] == "episode_end"}
    assert ends == {"t/plain": "submitted", "t/service": "submitted", "t/env": "submitted"}

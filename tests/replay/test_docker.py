"""Re-execution on Docker: identical replays on the recorded image id, kept containers."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hazmat.errors import ReplayError
from hazmat.replay.attach import attach, attach_command
from hazmat.replay.reexec import replay_episode
from hazmat.replay.trace import load_run

from .conftest import TASKS, episode_of, invoke, make_run

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def docker_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docker-runs")
    return make_run(out, TASKS / "find-file", TASKS / "backup-creds", sandbox="docker")


def _containers(run_id: str) -> list[str]:
    import docker

    client = docker.from_env(timeout=30)
    try:
        return [
            c.id
            for c in client.containers.list(all=True, filters={"label": [f"hazmat.run={run_id}"]})
        ]
    finally:
        client.close()


@pytest.mark.parametrize("task", ["examples/find-file", "examples/backup-creds"])
def test_solution_run_replays_identical_on_docker(
    docker_run: Path, tmp_path: Path, task: str
) -> None:
    eid = episode_of(docker_run, task)
    report = asyncio.run(replay_episode(docker_run, eid, out_dir=tmp_path))
    assert report.identical, report.summary
    assert report.backend == "docker" and report.environment == []
    recorded = load_run(docker_run).episode(eid).ready or {}
    replayed = load_run(Path(report.replay_run or "")).episode(eid).ready or {}
    assert replayed.get("image_id") == recorded.get("image_id")  # the same image, by id
    assert _containers(Path(report.replay_run or "").name) == []


def test_keep_leaves_a_running_container_to_attach_to(docker_run: Path, tmp_path: Path) -> None:
    from hazmat.sandbox.docker.ledger import cleanup

    eid = episode_of(docker_run, "examples/backup-creds")
    res = invoke(
        "replay",
        str(docker_run),
        "--episode",
        eid,
        "--until",
        "3",
        "--keep",
        "--out",
        str(tmp_path),
        "--json",
    )
    data = json.loads(res.output.strip().splitlines()[-1])
    replay_run = Path(data["replay_run"]).name
    try:
        assert res.exit_code == 0, res.output
        kept = data["kept"]
        assert kept["backend"] == "docker"
        assert kept["attach"].startswith("hazmat sandbox shell --attach ")
        assert kept["cleanup"] == f"hazmat cleanup --run {replay_run}"
        argv = attach_command(kept["container"])
        assert argv[:2] == ["docker", "exec"] and "agent" in argv
        # the state after step 3: the admin session the replayed login opened
        probe = subprocess.run(
            [*argv[:-1], "/bin/sh", "-c", "cat /tmp/appctl/session; id -un"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip().endswith("agent")
        assert attach(kept["container"]) == 0  # stdin is not a terminal here: bash reads EOF
    finally:
        counts = cleanup(run_id=replay_run)
    assert counts["containers"] >= 1
    assert _containers(replay_run) == []


def test_a_gone_image_is_refused_unless_allowed(docker_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / docker_run.name
    shutil.copytree(docker_run, copy)
    events = copy / "events.jsonl"
    lines = events.read_text().splitlines()
    eid = episode_of(docker_run, "examples/find-file")
    for i, line in enumerate(lines):
        ev = json.loads(line)
        if ev.get("event") == "sandbox_ready" and ev.get("episode_id") == eid:
            ev["image_id"] = "sha256:" + "0" * 64
            lines[i] = json.dumps(ev)
    events.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayError, match="which is gone"):
        asyncio.run(replay_episode(copy, eid, out_dir=tmp_path / "r"))
    report = asyncio.run(replay_episode(copy, eid, out_dir=tmp_path / "r", allow_other_image=True))
    assert report.identical, report.summary
    assert any("is gone; replaying on" in n for n in report.notes)
    assert any("does not verify" in n for n in report.notes)  # we edited the record


def test_halted_run_replays_identical_on_docker(tmp_path: Path) -> None:
    from .conftest import HALT_SCRIPT

    script = tmp_path / "halt.json"
    script.write_text(json.dumps(HALT_SCRIPT))
    run_dir = make_run(
        tmp_path / "runs", TASKS / "find-file", agent=f"scripted:{script}", sandbox="docker"
    )
    eid = next(iter(load_run(run_dir).episodes))
    report = asyncio.run(replay_episode(run_dir, eid, out_dir=tmp_path / "r"))
    assert report.identical, report.summary
    assert report.replayed_end == "halted"
    assert _containers(Path(report.replay_run or "").name) == []

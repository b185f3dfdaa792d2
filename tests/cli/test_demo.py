"""`hazmat demo`, the README's first command, end to end on the embedded default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)


def test_demo_runs_halts_the_reckless_agent_and_writes_the_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "run.json").is_file()]
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "complete"
    by_agent: dict[str, list[dict[str, object]]] = {}
    for ep in summary["episodes"]:
        by_agent.setdefault(str(ep["agent"]), []).append(ep)
    assert {ep["progress"] for ep in by_agent["careful"]} == {1.0}
    assert all(not ep["halt"] for ep in by_agent["careful"])
    halted = [ep for ep in by_agent["reckless"] if ep["status"] == "halted"]
    assert halted, by_agent["reckless"]
    assert "gate:" in proc.stdout
    assert f"hazmat replay {run_dir} --episode {halted[0]['episode_id']}" in proc.stdout
    assert (run_dir / "report.html").stat().st_size > 1000
    assert (run_dir / "timeline.html").stat().st_size > 1000
    assert (run_dir / "episodes" / str(halted[0]["episode_id"]) / "halt.json").is_file()
    verify = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "verify", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "hazmat.cli",
            "replay",
            str(run_dir),
            "--episode",
            str(halted[0]["episode_id"]),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout.strip().splitlines()[-1])["verdict"] == "identical"
    # re-policing with the recorded policy reproduces every recorded decision, including
    # the after stage's (which decided on the monitors' signals)
    repolice = subprocess.run(
        [sys.executable, "-m", "hazmat.cli", "replay", str(run_dir), "--policy", "default",
         "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert repolice.returncode == 0, repolice.stderr
    report = json.loads(repolice.stdout.strip().splitlines()[-1])
    assert report["changed"] == 0, [e["differences"] for e in report["episodes"]]
    assert any(ep["task_id"] == "safeguards/monitor-tamper" for ep in report["episodes"])


@pytest.mark.docker
def test_the_first_local_run_says_it_prepares_the_sandbox_system(tmp_path: Path) -> None:
    """With no cached root file system the first run explains its wait on stderr (one
    line, then the tree is made from Docker's image); the second run says nothing."""
    from hazmat.sandbox.local.host import rmtree

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    cache = Path(tempfile.mkdtemp(prefix="hazmat-rootfs-test-", dir="/var/tmp"))
    os.chmod(cache, 0o755)  # the sandbox's ids must reach the tree
    env["HAZMAT_ROOTFS_CACHE"] = str(cache)
    env.pop("HAZMAT_LOCAL_ROOT", None)
    argv = [sys.executable, "-m", "hazmat.cli", "run", "tasks/examples/find-file"]
    argv += ["--agent", "solution", "--sandbox", "local", "--out", str(tmp_path / "runs")]
    root = Path(__file__).resolve().parents[2]
    try:
        first = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=root)
        assert first.returncode == 0, first.stderr
        assert "preparing the local sandbox's root file system" in first.stderr
        assert "ready (docker-export" in first.stderr
        second = subprocess.run(
            argv, capture_output=True, text=True, timeout=240, env=env, cwd=root
        )
        assert second.returncode == 0, second.stderr
        assert "preparing" not in second.stderr
        assert any(cache.iterdir())
    finally:
        rmtree(cache)

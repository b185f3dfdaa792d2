"""``hazmat import cybench``: a small task in Cybench's layout (tests/…/data/cybench-mini,
written for these tests) and the real Cybench folders in ``../shared/benchmarks``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hazmat.tasks.importers import import_tasks
from hazmat.tasks.load import discover_tasks, load_variants
from hazmat.validate import validate_tasks

from .conftest import DATA

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]

MINI = DATA / "cybench-mini"


def test_mini_task_maps_every_part(tmp_path: Path) -> None:
    out = tmp_path / "cb"
    report = import_tasks("cybench", MINI, out)
    assert [t.id for t in report.tasks] == ["cybench/vault"] and not report.skipped
    entry = report.tasks[0]
    assert entry.variants == ["guided", "unguided", "easy"]
    guided, unguided, easy = (t for t in load_variants(out / "vault"))
    assert guided.questions and [q.id for q in guided.questions.items] == ["q1", "q2"]
    assert guided.questions.mode == "guided" and [m.id for m in guided.milestones] == ["q1", "q2"]
    assert unguided.questions and [q.id for q in unguided.questions.items] == ["q2"]
    assert (
        "hint.txt and blob.bin in /home/agent" in easy.instructions
        and "$TMP_DIR" not in easy.instructions
    )
    # init_script's cp / unzip / mv / rm replayed: the files the agent gets, bytes intact
    files = guided.sandbox.files
    assert files["/home/agent/blob.bin"].data() == bytes(range(256))
    assert files["/home/agent/hint.txt"].data() == b"the password is: open-sesame\n"
    assert set(files) == {"/home/agent/blob.bin", "/home/agent/hint.txt"}
    assert any("./start_docker.sh" in d.what for d in entry.dropped)
    # requirements.sh -> the environment
    assert guided.sandbox.build is not None and "jq" in guided.sandbox.build.apt
    # the compose service, rebuilt on the hazmat base, listed
    assert set(guided.sandbox.services) == {"vault"}
    svc = guided.sandbox.services["vault"]
    assert svc.user == "nobody" and svc.healthcheck == "nc -z localhost 1337 || exit 1"
    dockerfile = (out / "vault" / "services" / "vault" / "Dockerfile").read_text()
    assert "FROM ${BASE}" in dockerfile and "python:3.11" not in dockerfile.split("\n", 1)[1]
    assert "socat" in dockerfile and "COPY challenge/app.py ." in dockerfile
    [rewrite] = entry.rewrites
    assert rewrite.service == "vault" and rewrite.original.startswith("FROM python:3.11-slim")
    assert rewrite.rebuilt_on == "hazmat-base:bookworm"
    md = (out / "IMPORT.md").read_text()
    assert "service `vault` rebuilt on hazmat-base:bookworm (was FROM python:3.11-slim" in md
    assert json.loads((out / "import-report.json").read_text())["counts"]["service_rewrites"] == 1


@pytest.mark.docker
async def test_mini_task_validates_with_questions_scored_per_subtask(tmp_path: Path) -> None:
    out = tmp_path / "cb"
    import_tasks("cybench", MINI, out)
    tasks = discover_tasks([out / "vault@guided", out / "vault@unguided"])
    run_dir, verdicts = await validate_tasks(
        tasks, sandbox="auto", out_dir=tmp_path / "runs", jobs=2
    )
    by = {v.task_id: v for v in verdicts}
    guided = by["cybench/vault@guided"]
    assert guided.ok and guided.backend == "docker", guided.problems
    assert [(m["id"], m["proven"]) for m in guided.milestones] == [("q1", False), ("q2", True)]
    assert guided.solution is not None and guided.solution.service_contacts == {"vault": 1}
    unguided = by["cybench/vault@unguided"]
    assert unguided.ok and unguided.proven, (unguided.problems, unguided.unproven)
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    milestones = [e["id"] for e in events if e["event"] == "milestone"]
    assert milestones.count("q1") == 1 and milestones.count("q2") == 2


def test_real_cybench_import_lists_every_rewrite(benchmarks: Path, tmp_path: Path) -> None:
    source = benchmarks / "cybench"
    listed = [
        ln.strip() for ln in (source / "task_list.txt").read_text().splitlines() if ln.strip()
    ]
    out = tmp_path / "cb"
    report = import_tasks("cybench", source, out)
    seen = {t.source_id for t in report.tasks} | {s.source_id for s in report.skipped}
    assert seen == set(listed)
    assert len(report.tasks) >= 12
    with_services = [t for t in report.tasks if t.rewrites]
    assert len(with_services) >= 4
    md = (out / "IMPORT.md").read_text()
    for t in with_services:
        task = load_variants(Path(t.folder))[0]
        assert set(task.sandbox.services) == {r.service for r in t.rewrites}
        for r in t.rewrites:
            assert f"service `{r.service}` rebuilt on hazmat-base:bookworm" in md
            folder = Path(t.folder) / task.sandbox.services[r.service].build  # type: ignore[operator]
            assert (folder / "Dockerfile").read_text().splitlines()[2] == "FROM ${BASE}"
    for s in report.skipped:
        assert s.reason  # each skip says why


def test_real_import_keeps_scripts_whole_and_health_checks_true(
    benchmarks: Path, tmp_path: Path
) -> None:
    """An install line inside a shell construct becomes ``true`` in place: BoxCutter's
    ``if ! apt-get install -y strace; then ... fi`` used to lose its ``if`` line, so the
    imported script always printed "Failed to install strace" and exited 1. Every
    imported solution script parses (``bash -n``) and none still installs anything."""
    import re
    import subprocess

    out = tmp_path / "cb"
    import_tasks("cybench", benchmarks / "cybench", out)
    scripts = sorted(out.glob("*/solution/solution.sh"))
    assert len(scripts) >= 12
    for script in scripts:
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, (script, check.stderr)
        text = script.read_text()
        assert not re.search(r"\bapt(-get)?\s+install\b|\bpip3?\s+install\b", text), script
    boxcutter = (out / "boxcutter" / "solution" / "solution.sh").read_text()
    assert "if ! true; then" in boxcutter and 'strace "./cutter"' in boxcutter
    # ezmaze's compose health check probes 1337 while the service serves 9999: compose
    # only marks it unhealthy, hazmat waited for health and every episode ended error
    ezmaze = yaml.safe_load((out / "ezmaze" / "task.yaml").read_text())
    assert ezmaze["sandbox"]["services"]["ezmaze"]["healthcheck"] == "nc -z 127.0.0.1 9999"
    assert "health check probed port 1337" in (out / "IMPORT.md").read_text()

"""hazmat show / hazmat runs on real recorded runs: a solution run and a halted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from hazmat.errors import ConfigError
from hazmat.replay.timeline import ShowFilter, run_renderables, runs_rows, select_steps
from hazmat.replay.trace import load_run

from .conftest import episode_of, invoke

pytestmark = [pytest.mark.timeout(300)]


def _text(run_dir: Path, **kw: object) -> str:
    con = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    for item in run_renderables(load_run(run_dir), **kw):  # type: ignore[arg-type]
        con.print(item)
    return con.export_text()


def test_show_solution_run_has_every_step_output_and_milestone(solution_run: Path) -> None:
    eid = episode_of(solution_run, "examples/backup-creds")
    out = invoke("show", str(solution_run), "--episode", eid).output
    assert "task: examples/backup-creds" in out
    for n in (1, 2, 3, 4):
        assert f"step {n}" in out
    assert "$ cat /var/backups/app.conf.bak" in out
    assert "login ok: admin session open" in out  # full output
    assert "★ milestone backup" in out and "★ milestone admin" in out
    assert "secret-exposed [log, medium]" in out  # a logged decision with its rule
    assert "evidence: secret password:db" in out
    assert "end: submitted" in out
    env = (load_run(solution_run).episode(eid).ready or {})["environment"]
    assert f"environment: {env}" in out  # the hash replay names when it differs


def test_show_halted_run_shows_the_halt_with_evidence_and_whole_outputs(halted_run: Path) -> None:
    out = _text(halted_run)
    assert "HALTED BY POLICY" in out
    assert "step 4 (before)" in out
    assert "reverse-shell" in out and "evidence:" in out
    assert "policy before: HALT" in out
    # step 1 printed 40000 lines; the model saw it cut, the timeline shows it whole
    assert "\n│ 39999" in out and "│ 40000" in out
    assert "the model saw it cut by" in out
    assert "end: halted" in out


def test_filters(halted_run: Path) -> None:
    trace = load_run(halted_run)
    ep = next(iter(trace.episodes.values()))
    assert [s.step for s in select_steps(ep, ShowFilter(step=2))] == [2]
    assert [s.step for s in select_steps(ep, ShowFilter(decisions_only=True))] == [3, 4]
    assert [s.step for s in select_steps(ep, ShowFilter(around_halt=1))] == [3, 4]
    assert [s.step for s in select_steps(ep, ShowFilter(tool="submit"))] == []
    only = invoke("show", str(halted_run), "--step", "2").output
    assert "find /home/agent" in only and "seq 1 40000" not in only
    around = invoke("show", str(halted_run), "--around-halt", "0").output
    assert "step 4" in around and "step 3" not in around


def test_show_rejects_unknown_episode_and_non_runs(solution_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no episode 'ep9999'"):
        invoke("show", str(solution_run), "--episode", "ep9999")
    with pytest.raises(ConfigError, match="not a run directory"):
        invoke("show", str(tmp_path))


def test_runs_lists_status_halts_and_numbers(halted_run: Path, solution_run: Path) -> None:
    rows = runs_rows(halted_run.parent)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "complete"
    assert row["halted"] == [next(iter(load_run(halted_run).episodes))]
    assert row["tasks"] == ["examples/find-file"]
    out = invoke("runs", str(solution_run.parent), "--json").output
    data = json.loads(out.strip().splitlines()[-1])
    assert data[0]["episodes"] == 3 and data[0]["completed"] + data[0]["ended"] >= 3
    assert data[0]["mean_progress"] == 1.0
    table = invoke("runs", str(solution_run.parent)).output
    assert solution_run.name in table and "complete" in table

"""run.json: atomic writes, ids, episodes, listing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hazmat.errors import RecordError
from hazmat.record import EpisodeRecord, Recorder, RunStore, list_runs, new_run_id


def test_run_ids_sort_and_are_unique() -> None:
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d_[0-9a-f]{6}", i) for i in ids)


def test_create_update_and_reload(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "runs", config={"seed": 4}, tasks=["a"], agents=["null"])
    assert (store.path / "blobs").is_dir()
    data = json.loads((store.path / "run.json").read_text())
    assert data["status"] == "running" and data["config"] == {"seed": 4}
    store.add_episode(EpisodeRecord(episode_id="e1", task_id="a", agent="null"))
    store.update_episode("e1", status="limit", limit_hit="steps", steps=30, progress=0.5)
    store.set_status("interrupted")
    again = RunStore.open(store.path).record
    assert again.status == "interrupted"
    ep = again.episode("e1")
    assert ep is not None and (ep.status, ep.limit_hit, ep.steps) == ("limit", "steps", 30)
    assert not list(store.path.glob(".*tmp"))  # no temp files left
    with pytest.raises(RecordError, match="no episode"):
        store.update_episode("nope", steps=1)
    with pytest.raises(RecordError):
        store.update_episode("e1", status="bogus")
    with pytest.raises(RecordError, match="exists"):
        RunStore.create(tmp_path / "runs", store.run_id)


def test_open_reports_bad_run_json(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=r"no run\.json"):
        RunStore.open(tmp_path)
    (tmp_path / "run.json").write_text('{"run_id": 3}')
    with pytest.raises(RecordError, match=r"run\.json"):
        RunStore.open(tmp_path)


def test_list_runs(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "missing") == []
    a = RunStore.create(tmp_path, "2026-01-01T00-00-00_aaaaaa")
    b = RunStore.create(tmp_path, "2026-01-02T00-00-00_bbbbbb")
    (tmp_path / "junk").mkdir()
    broken = tmp_path / "2026-01-03T00-00-00_cccccc"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    found = list_runs(tmp_path)
    assert [Path(f.path).name for f in found] == [a.run_id, b.run_id, broken.name]
    assert found[0].record is not None and found[2].record is None and found[2].error


def test_list_runs_tells_live_from_dead(tmp_path: Path) -> None:
    live = Recorder.create(tmp_path, run_id="2026-01-01T00-00-00_live00")
    dead = Recorder.create(tmp_path, run_id="2026-01-01T00-00-01_dead00")
    dead.close()  # as if its process died: status stays running
    found = {Path(f.path).name: f for f in list_runs(tmp_path)}
    assert found[live.run_id].live and not found[dead.run_id].live
    rec = found[dead.run_id].record
    assert rec is not None and rec.status == "running"
    live.finish()
    assert not list_runs(tmp_path)[0].live

"""run.json is derived from the events: one function for the writer and the verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hazmat.errors import RecordError
from hazmat.record import Recorder
from hazmat.record.summary import derive_run_record, diff_records, load_run_record
from hazmat.replay.verify import verify_run

from .helpers import recompute_chain


def _halted_and_resumed_run(tmp_path: Path) -> Path:
    rec = Recorder.create(tmp_path, run_id="sum", config={"seed": 3, "policy": "default"})
    ep = rec.bind("e1")
    ep.start(task_id="t/one", agent="scripted:x", epoch=0, seed=11)
    ep.emit("model_call", response={"content": "hi"}, usage={"input_tokens": 7, "output_tokens": 2})
    ep.emit("tool_call", step=1, call_id="c1", tool="bash", args={"command": "id"})
    ep.emit(
        "policy_decision",
        step=1,
        call_id="c1",
        stage="before",
        action="halt",
        reason="no id",
        rules=[{"rule": "no-id", "action": "halt", "evidence": "id"}],
    )
    ep.end("halted", progress=0.25, depth="m1", steps=1, duration=0.5)
    ep2 = rec.bind("e2")
    ep2.start(task_id="t/two", agent="null")
    ep2.emit("error", kind="harness", message="sandbox lost")
    rec.close()  # killed: e2 never ended
    again = Recorder.open(rec.path)
    again.emit("note", episode_id="e2", kind="rerun", message="again")
    ep2 = again.bind("e2")
    ep2.start(task_id="t/two", agent="null", attempt=2)
    ep2.emit("limit", which="steps", limit=3)
    ep2.end("limit", steps=3, limit_hit="steps")
    again.finish()
    return again.path


def test_run_json_is_exactly_the_derivation_of_the_events(tmp_path: Path) -> None:
    run = _halted_and_resumed_run(tmp_path)
    events = recompute_chain(run / "events.jsonl")
    data = json.loads((run / "run.json").read_text())
    derived = derive_run_record(events).model_dump(mode="json")
    assert {k: v for k, v in data.items() if not k.startswith("sealed_")} == {
        k: v for k, v in derived.items() if not k.startswith("sealed_")
    }
    assert data["sealed_hash"] == events[-1]["hash"]  # the seal copy of the finish
    e1, e2 = data["episodes"]
    assert e1["halt"] == {
        "step": 1,
        "stage": "before",
        "rule": "no-id",
        "evidence": "id",
        "reason": "no id",
    }
    assert (e1["tokens"], e1["decisions"]) == ({"input": 7, "output": 2}, {"halt": 1})
    # the re-run replaced the first attempt (its error is gone), in place
    assert (e2["status"], e2["limit_hit"], e2["error"], e2["steps"]) == ("limit", "steps", None, 3)
    assert data["created"] == events[0]["ts"] and data["updated"] == events[-1]["ts"]
    assert data["config"] == {"seed": 3, "policy": "default"} and data["format"] == 2
    assert load_run_record(run).model_dump() == derive_run_record(events).model_dump()
    assert verify_run(run).ok


def test_load_run_record_refuses_a_broken_chain(tmp_path: Path) -> None:
    run = _halted_and_resumed_run(tmp_path)
    lines = (run / "events.jsonl").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"id"', b'"whoami"', 1)
    (run / "events.jsonl").write_bytes(b"\n".join(lines))
    with pytest.raises(RecordError, match="does not verify at line 4"):
        load_run_record(run)
    assert load_run_record(run, strict=False).run_id == "sum"
    (run / "events.jsonl").write_bytes(b"")
    with pytest.raises(RecordError, match="no events"):
        load_run_record(run)


def test_diff_records_names_every_difference() -> None:
    want = {
        "format": 2,
        "run_id": "r",
        "status": "complete",
        "config": {"seed": 1},
        "episodes": [{"episode_id": "a", "halt": {"rule": "x", "stage": "before"}, "steps": 2}],
    }
    have = json.loads(json.dumps(want))
    assert diff_records(want, have) == []
    have["config"]["seed"] = 2
    have["episodes"][0]["halt"]["rule"] = "y"
    have["episodes"][0]["extra"] = True
    have["sealed_hash"] = "f" * 64  # the seal copy is checked elsewhere
    assert diff_records(want, have) == [
        (None, "config.seed: run.json says 2, the events say 1"),
        ("a", "halt.rule: run.json says 'y', the events say 'x'"),
        ("a", "extra: run.json says True, the events have no such field"),
    ]
    legacy = json.loads(json.dumps(want))
    del legacy["format"], legacy["episodes"][0]["halt"]["stage"]
    assert diff_records(want, legacy, legacy=True) == []
    assert len(diff_records(want, legacy)) == 2

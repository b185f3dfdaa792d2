"""The Recorder: chain by contract, blobs, run.json in step, resume, concurrency, SIGKILL."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hazmat.errors import RecordError
from hazmat.record import Recorder, RunStore, configure_logging
from hazmat.replay.verify import verify_run

from .helpers import recompute_chain


def _episode(rec: Recorder, eid: str = "ep1", *, long_out: bool = True) -> None:
    ep = rec.bind(eid)
    ep.start(task_id="examples/find", agent="solution", epoch=0, seed=7)
    ep.emit("sandbox_ready", backend="local", image_id="sha256:abc", spec={"network": "none"})
    ep.emit(
        "model_call",
        messages=[ep.blob_json({"role": "user", "content": "naïve ✓ 日本"})],
        response={"tool_calls": [{"id": "c1", "name": "bash"}]},
        usage={"input_tokens": 10, "output_tokens": 3},
        latency=0.25,
    )
    ep.emit("tool_call", id="c1", tool="bash", args={"command": "ls /"})
    ep.emit("policy_decision", stage="before", action="allow", rules=[], evidence=None, step=1)
    ep.emit(
        "tool_result",
        id="c1",
        exit_code=0,
        duration=0.01,
        timed_out=False,
        truncated=long_out,
        stdout="line\n" * (2000 if long_out else 3),
        stderr="",
    )
    ep.emit("milestone", id="recon", step=1, t=0.3)
    ep.end("submitted", progress=0.5, depth="recon", steps=1)


def test_chain_matches_the_contract_recomputed_independently(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path, config={"seed": 1}, tasks=["examples/find"], agents=["x"])
    _episode(rec)
    rec.finish()
    events = recompute_chain(rec.events_path)
    assert [e["event"] for e in events][:3] == ["run_start", "episode_start", "sandbox_ready"]
    assert events[-1]["event"] == "run_end"
    assert events[0]["prev"] == "0" * 64
    assert all(e["run_id"] == rec.run_id for e in events)
    # the non-ASCII text is stored as is (ensure_ascii=False)
    assert any("日本".encode() in p.read_bytes() for p in rec.blobs_path.iterdir())


def test_long_output_goes_to_a_blob_never_truncated(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    out = "".join(f"{i:06d}\n" for i in range(5000))  # 35,000 bytes
    ev = rec.emit("tool_result", exit_code=0, duration=0.1, stdout=out, stderr="short")
    rec.finish()
    ref = ev["stdout"]
    assert ref == {"blob": hashlib.sha256(out.encode()).hexdigest(), "size": len(out)}
    assert (rec.blobs_path / ref["blob"]).read_text() == out
    assert ev["stderr"] == "short"
    exactly = "x" * 4096
    assert Recorder.create(tmp_path).emit("note", text=exactly)["text"] == exactly


def test_binary_bytes_become_blobs(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    ev = rec.emit("tool_result", exit_code=1, stdout=b"\xff\xfe\x00", stderr=b"ok")
    assert ev["stdout"]["size"] == 3 and ev["stderr"] == "ok"
    assert (rec.blobs_path / ev["stdout"]["blob"]).read_bytes() == b"\xff\xfe\x00"


def test_known_events_are_checked_and_envelope_keys_reserved(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path, strict=True)
    with pytest.raises(RecordError, match=r"episode_end.*reason"):
        rec.emit("episode_end", episode_id="e", reason="bored")
    with pytest.raises(RecordError, match="id"):
        rec.emit("tool_call", tool="bash", args={})
    rec.emit("tool_call", call_id="c1", tool="bash", args={})  # call_id is fine too
    lenient = Recorder.create(tmp_path)  # default: keep the event, flag it
    ev = lenient.emit("milestone", id="m", step="three", t=1.0)
    assert "step" in ev["schema_error"] and ev["step"] == "three"
    lenient.finish()
    assert verify_run(lenient.path).ok
    with pytest.raises(RecordError, match="reserved"):
        rec.emit("note", seq=3)
    # unknown event names are fine: the record is extensible
    assert rec.emit("custom_thing", anything={"x": [1, 2]})["seq"] == 2


def test_run_json_follows_the_events(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path, config={"sandbox": "local"}, tasks=["t"], agents=["a"])
    assert RunStore.open(rec.path).record.status == "running"
    ep = rec.bind("e1")
    ep.start(task_id="t", agent="a", seed=3)
    rec_mid = RunStore.open(rec.path).record
    assert rec_mid.episodes[0].status is None
    ep.emit("model_call", messages=[], usage={"prompt_tokens": 5, "completion_tokens": 2})
    ep.emit("policy_decision", stage="before", action="log", rules=[{"rule": "r1"}])
    ep.emit(
        "policy_decision",
        stage="before",
        action="halt",
        step=2,
        rules=[{"rule": "reverse-shell", "action": "halt"}],
        evidence="nc -e /bin/sh",
    )
    ep.emit("milestone", id="m1", step=1, t=1.5)
    ep.end("halted", progress=0.25, depth="m1")
    rec.finish()
    run = RunStore.open(rec.path).record
    assert run.status == "complete"
    (e,) = run.episodes
    assert (e.status, e.progress, e.depth, e.seed) == ("halted", 0.25, "m1", 3)
    assert e.decisions == {"log": 1, "halt": 1}
    assert e.halt is not None and (e.halt.step, e.halt.rule) == (2, "reverse-shell")
    assert (e.tokens.input, e.tokens.output) == (5, 2)
    assert [m.id for m in e.milestones] == ["m1"] and e.steps == 1
    assert e.duration is not None and e.duration >= 0


def test_context_manager_marks_interrupted_on_exception(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Recorder.create(tmp_path) as rec:
        rec.emit("note", message="working")
        raise KeyboardInterrupt
    assert RunStore.open(rec.path).record.status == "interrupted"
    report = verify_run(rec.path)
    assert report.ok and report.ended and report.interrupted


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    _episode(rec, "e1")
    rec.close()
    n = len(recompute_chain(rec.events_path))
    rec2 = Recorder.open(rec.path)
    assert rec2.seq == n + 1  # the resume note took seq n
    _episode(rec2, "e2", long_out=False)
    rec2.finish()
    events = recompute_chain(rec.events_path)
    assert events[n]["event"] == "note" and events[n]["kind"] == "resumed"
    assert {e.episode_id for e in RunStore.open(rec.path).record.episodes} == {"e1", "e2"}
    assert verify_run(rec.path).ok


def test_one_writer_per_run(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    with pytest.raises(RecordError, match="another recorder"):
        Recorder.open(rec.path)
    rec.close()
    Recorder.open(rec.path).close()


def test_reopen_refuses_a_broken_chain(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    _episode(rec)
    rec.close()
    data = rec.events_path.read_bytes().replace(b'"exit_code":0', b'"exit_code":1')
    rec.events_path.write_bytes(data)
    with pytest.raises(RecordError, match="does not verify"):
        Recorder.open(rec.path)


def test_torn_last_line_is_skipped_with_a_note_on_reopen(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    _episode(rec)
    rec.close()
    good = len(recompute_chain(rec.events_path))
    with rec.events_path.open("ab") as f:  # what a writer killed mid-line leaves
        f.write(b'{"seq":99,"event":"tool_res')
    report = verify_run(rec.path)
    assert report.ok and report.interrupted and report.torn_line == good + 1
    assert report.valid_up_to_line == good
    rec2 = Recorder.open(rec.path)
    assert rec2.torn_line == good + 1
    rec2.finish()
    lines = rec.events_path.read_bytes().split(b"\n")
    assert lines[good] == b'{"seq":99,"event":"tool_res'  # evidence kept in place
    note = json.loads(lines[good + 1])
    assert (note["event"], note["kind"], note["line"], note["seq"]) == (
        "note",
        "torn_line",
        good + 1,
        good,
    )
    report = verify_run(rec.path)
    assert report.ok and not report.interrupted, report.summary


def test_threads_keep_a_valid_chain(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            ep = rec.bind(f"t{k}")
            for i in range(40):
                ep.emit("tool_call", id=f"{k}-{i}", tool="bash", args={"i": i, "k": k})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    rec.finish()
    assert not errors
    events = recompute_chain(rec.events_path)
    assert len(events) == 1 + 8 * 40 + 1
    for k in range(8):  # each thread's own events stay in its order
        mine = [e["args"]["i"] for e in events if e.get("episode_id") == f"t{k}"]
        assert mine == list(range(40))
    assert verify_run(rec.path).ok


def test_asyncio_tasks_keep_a_valid_chain(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path)

    async def episode(k: int) -> None:
        ep = rec.bind(f"a{k}")
        await ep.aemit("episode_start", task_id="t", agent="a", seed=k)
        for i in range(15):
            await ep.aemit("tool_call", id=str(i), tool="bash", args={})
            rec.emit("note", episode_id=f"a{k}", message=f"sync {i}")
            await asyncio.sleep(0)
        await ep.aemit("episode_end", reason="submitted", progress=1.0, depth=None)

    async def main() -> None:
        await asyncio.gather(*(episode(k) for k in range(6)))

    asyncio.run(main())
    rec.finish()
    events = recompute_chain(rec.events_path)
    assert len(events) == 2 + 6 * (2 + 30)
    run = RunStore.open(rec.path).record
    assert sorted(e.episode_id for e in run.episodes) == [f"a{k}" for k in range(6)]
    assert all(e.status == "submitted" for e in run.episodes)
    assert verify_run(rec.path).ok


_WRITER = textwrap.dedent(
    """
    import sys
    from hazmat.record import Recorder
    rec = Recorder.create(sys.argv[1], run_id="killed", config={"agent": "loop"})
    ep = rec.bind("ep1")
    ep.start(task_id="t", agent="loop", seed=1)
    i = 0
    while True:
        ep.emit("tool_call", id=str(i), tool="bash", args={"command": "x" * (i % 300)})
        ep.emit("tool_result", id=str(i), exit_code=0, stdout="y" * (i * 37 % 9000))
        i += 1
    """
)


def test_sigkill_mid_episode_leaves_a_readable_record(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)])
    events_file = tmp_path / "killed" / "events.jsonl"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if events_file.exists() and events_file.read_bytes().count(b"\n") >= 60:
                break
            time.sleep(0.01)
        else:  # pragma: no cover
            pytest.fail("writer produced no events")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    data = events_file.read_bytes()
    lines = data.split(b"\n")
    complete = lines[:-1]
    for line in complete:  # every complete line is a JSON event
        json.loads(line)
    assert len(complete) >= 60
    run = RunStore.open(tmp_path / "killed").record
    assert run.status == "running"
    assert run.episodes[0].status is None
    report = verify_run(tmp_path / "killed")
    assert report.ok, report.summary
    assert report.interrupted and not report.ended
    assert report.valid_up_to_line == len(complete)
    assert f"valid up to line {len(complete)}" in report.summary
    # and it can be resumed and closed
    rec = Recorder.open(tmp_path / "killed")
    rec.finish("interrupted")
    assert verify_run(tmp_path / "killed").ok


def test_human_log_lines_go_to_the_configured_stream(tmp_path: Path) -> None:
    buf = io.StringIO()
    configure_logging("info", stream=buf)
    try:
        rec = Recorder.create(tmp_path, run_id="logged")
        rec.bind("e9").start(task_id="t", agent="a")
        rec.emit("tool_call", episode_id="e9", id="1", tool="bash", args={})  # debug: hidden
        rec.finish()
    finally:
        configure_logging("warning", stream=io.StringIO())
    text = buf.getvalue()
    assert "episode_start" in text and "e9" in text and "run_id=logged" in text
    assert "tool_call" not in text
    quiet = io.StringIO()
    configure_logging("warning", stream=quiet)
    Recorder.create(tmp_path, run_id="quiet").finish()
    assert quiet.getvalue() == ""


def test_capture_logs_sees_record_events(tmp_path: Path) -> None:
    import structlog

    rec = Recorder.create(tmp_path)
    ep = rec.bind("e1")
    configure_logging("info", stream=io.StringIO())  # after the recorder: loggers are lazy
    try:
        with structlog.testing.capture_logs() as logs:
            ep.start(task_id="t", agent="a")
            ep.log.warning("sandbox slow", seconds=3)
    finally:
        configure_logging("warning", stream=io.StringIO())
    assert logs[0]["event"] == "episode_start" and logs[0]["episode_id"] == "e1"
    assert logs[0]["log_level"] == "info"
    assert logs[1]["event"] == "sandbox slow" and logs[1]["episode_id"] == "e1"
    assert logs[1]["run_id"] == rec.run_id
    rec.finish()

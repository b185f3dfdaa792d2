"""verify_run / seal_run / the verify and seal commands: tampering is caught."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path

import pytest
import typer

from hazmat.cli.records import seal, verify
from hazmat.errors import HazmatError, RecordError
from hazmat.record import Recorder
from hazmat.record.seals import SEAL_LOG_ENV
from hazmat.replay.verify import seal_run, verify_run


def _recompute(events_file: Path) -> str:
    """Independent recomputation of the chain by the contract; returns the last hash."""
    prev = "0" * 64
    for i, line in enumerate(events_file.read_bytes().splitlines()):
        ev = json.loads(line)
        stored = ev.pop("hash")
        assert ev["seq"] == i and ev["prev"] == prev
        body = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(body.encode("utf-8")).hexdigest() == stored
        prev = stored
    return prev


@pytest.fixture(autouse=True)
def seal_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """These tests reuse the run id "r1": each gets a seal log of its own."""
    path = tmp_path / "seal-log" / "seals.jsonl"
    monkeypatch.setenv(SEAL_LOG_ENV, str(path))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    rec = Recorder.create(tmp_path / "runs", run_id="r1", config={"seed": 1})
    for k in range(2):
        ep = rec.bind(f"e{k}")
        ep.start(task_id="examples/find", agent="solution", seed=k)
        ep.emit("tool_call", id="c1", tool="bash", args={"command": "cat /root/flag.txt — ✓"})
        ep.emit("policy_decision", stage="before", action="allow", rules=[])
        ep.emit(
            "tool_result",
            id="c1",
            exit_code=0,
            duration=0.01,
            stdout=f"flag-{k}\n" * 1000,
            stderr="",
        )
        ep.emit("milestone", id="flag", step=1, t=0.2)
        ep.end("completed", progress=1.0, depth="flag", steps=1)
    rec.finish()
    return rec.path


def _lines(run: Path) -> list[bytes]:
    return run.joinpath("events.jsonl").read_bytes().split(b"\n")[:-1]


def _write(run: Path, lines: list[bytes]) -> None:
    run.joinpath("events.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def test_a_clean_run_verifies(run: Path) -> None:
    report = verify_run(run)
    assert report.ok, report.summary
    assert report.ended and not report.interrupted
    assert report.last_hash == _recompute(run / "events.jsonl")
    assert report.events == len(_lines(run)) == report.valid_up_to_line
    assert report.blobs_checked == 2 and report.blob_refs == 2
    assert report.summary.startswith("ok: ")


def test_editing_any_byte_of_an_event_breaks_it(run: Path, tmp_path: Path) -> None:
    original = run.joinpath("events.jsonl").read_bytes()
    lines = _lines(run)
    target = 3  # the tool_call of e0, line 4
    start = sum(len(line) + 1 for line in lines[:target])
    positions = list(range(start, start + len(lines[target])))
    rng = random.Random(0)
    positions += rng.sample(range(len(original) - 1), 150)  # and anywhere else
    for pos in positions:
        data = bytearray(original)
        if data[pos] == ord("\n"):
            continue
        data[pos] = ord("0") if data[pos] != ord("0") else ord("1")
        run.joinpath("events.jsonl").write_bytes(bytes(data))
        report = verify_run(run)
        assert not report.ok, f"edit at byte {pos} went unnoticed"
        line_no = original[:pos].count(b"\n") + 1
        assert report.first_broken is not None
        assert report.first_broken.line == line_no, (pos, report.summary)
    run.joinpath("events.jsonl").write_bytes(original)
    assert verify_run(run).ok


def test_edited_event_is_reported_with_line_and_event(run: Path) -> None:
    lines = _lines(run)
    assert b'"exit_code":0' in lines[4]
    lines[4] = lines[4].replace(b'"exit_code":0', b'"exit_code":1')
    _write(run, lines)
    report = verify_run(run)
    assert not report.ok and report.first_broken is not None
    assert (report.first_broken.line, report.first_broken.event) == (5, "tool_result")
    assert report.first_broken.kind == "hash"
    assert report.summary.startswith("BROKEN at line 5 (seq 4, tool_result)")


def test_forged_event_with_recomputed_hash_breaks_the_next_link(run: Path) -> None:
    lines = _lines(run)
    ev = json.loads(lines[4])
    assert ev["event"] == "tool_result"
    ev["exit_code"] = 1
    del ev["hash"]
    body = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    ev["hash"] = hashlib.sha256(body.encode()).hexdigest()
    lines[4] = json.dumps(ev).encode()
    _write(run, lines)
    report = verify_run(run)
    assert report.first_broken is not None
    assert (report.first_broken.line, report.first_broken.kind) == (6, "prev")


def test_removed_event_is_caught(run: Path) -> None:
    lines = _lines(run)
    del lines[4]
    _write(run, lines)
    report = verify_run(run)
    assert not report.ok and report.first_broken is not None
    assert report.first_broken.line == 5
    assert "seq is 5, expected 4" in report.first_broken.message


def test_reordered_pair_is_caught(run: Path) -> None:
    lines = _lines(run)
    lines[3], lines[4] = lines[4], lines[3]
    _write(run, lines)
    report = verify_run(run)
    assert not report.ok and report.first_broken is not None
    assert report.first_broken.line == 4


def test_changed_or_missing_blob_is_caught(run: Path) -> None:
    blob = sorted((run / "blobs").iterdir())[0]
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b"flag", b"FLAG", 1))
    report = verify_run(run)
    assert not report.ok and report.first_broken is not None
    assert report.first_broken.kind == "blob" and report.first_broken.event == "tool_result"
    assert "hashes to" in report.first_broken.message
    blob.unlink()
    report = verify_run(run)
    assert not report.ok and report.first_broken is not None
    assert "missing" in report.first_broken.message


def test_run_json_must_agree_with_the_events(run: Path) -> None:
    data = json.loads((run / "run.json").read_text())
    data["episodes"][1]["status"] = "submitted"
    data["episodes"][1]["progress"] = 0.5
    (run / "run.json").write_text(json.dumps(data))
    report = verify_run(run)
    assert not report.ok and report.first_broken is not None
    assert report.first_broken.kind == "run.json"
    assert "'e1'" in report.first_broken.message and "progress" in report.first_broken.message


def test_truncated_tail_is_caught_by_the_seal_log_run_json_and_expect(run: Path) -> None:
    final = verify_run(run).last_hash
    assert final is not None
    lines = _lines(run)
    _write(run, lines[:-1])  # drop run_end: the chain alone still holds
    report = verify_run(run)
    assert not report.ok
    # the seal log (written when the run finished) says where the record ended
    assert report.first_broken is not None and report.first_broken.kind == "seal"
    assert "its tail was cut" in report.summary
    assert any("do not end with run_end" in p.message for p in report.problems)
    report = verify_run(run, expect=final)
    assert report.expect_matches is False


def test_seal_then_expect_and_extension(run: Path, seal_log: Path) -> None:
    digest = seal_run(run)
    assert digest == _recompute(run / "events.jsonl")
    assert json.loads((run / "run.json").read_text())["sealed_hash"] == digest
    assert verify_run(run, expect=digest).ok
    assert not verify_run(run, expect="0" * 64).ok
    # a resume by a Recorder is no forgery: the seal log records the reopening and
    # the new seal, so the run verifies; only the hash kept elsewhere tells it grew
    rec = Recorder.open(run)
    rec.finish()
    assert verify_run(run).ok
    report = verify_run(run, expect=digest)
    assert not report.ok
    assert {p.kind for p in report.problems} == {"expect"}
    assert "continues for 2 more events" in report.summary
    kinds = [json.loads(line)["kind"] for line in seal_log.read_text().splitlines()]
    assert kinds == ["open", "seal", "open", "seal"]  # seal_run found the run sealed already


def test_seal_refuses_a_broken_or_busy_run(run: Path, tmp_path: Path) -> None:
    busy = Recorder.create(tmp_path / "runs", run_id="busy")
    with pytest.raises(RecordError, match="still writing"):
        seal_run(busy.path)
    busy.close()
    lines = _lines(run)
    del lines[2]
    _write(run, lines)
    with pytest.raises(RecordError, match="cannot seal: BROKEN"):
        seal_run(run)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="not a run directory"):
        verify_run(tmp_path)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the commands the way the `hazmat` entry point does: a HazmatError
    becomes one `error: ...` line on stderr and its exit code."""
    app = typer.Typer()
    app.command("verify")(verify)
    app.command("seal")(seal)
    try:
        code = app(args=args, standalone_mode=False) or 0
    except HazmatError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        code = exc.exit_code
    out = capsys.readouterr()
    return int(code), out.out, out.err


def test_cli_verify_and_seal(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["verify", str(run)], capsys)
    assert code == 0 and out.startswith("ok: ")
    code, out, _ = _cli(["seal", str(run)], capsys)
    assert code == 0
    digest = out.strip()
    code, out, _ = _cli(["verify", str(run), "--json", "--expect", digest], capsys)
    assert code == 0
    last = json.loads(out.strip().splitlines()[-1])
    assert last["ok"] is True and last["expect_matches"] is True
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    lines = _lines(broken)
    del lines[1]
    _write(broken, lines)
    code, out, err = _cli(["verify", str(broken)], capsys)
    assert code == 5 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "BROKEN at line 2" in err
    code, out, err = _cli(["verify", str(broken), "--json"], capsys)
    assert code == 5 and json.loads(out.strip().splitlines()[-1])["ok"] is False
    code, out, err = _cli(["seal", str(broken)], capsys)
    assert code == 5 and "cannot seal" in err
    code, _, err = _cli(["verify", str(tmp_path / "nope")], capsys)
    assert code == 2 and "not a run directory" in err


def test_run_json_lagging_an_interrupted_run_is_a_warning(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path, run_id="lag")
    ep = rec.bind("e1")
    ep.start(task_id="t", agent="a")
    at_start = (rec.path / "run.json").read_bytes()
    ep.end("limit", progress=0.0)
    rec.close()  # killed before run_end ...
    (rec.path / "run.json").write_bytes(at_start)  # ... and before run.json caught up
    report = verify_run(rec.path)
    assert report.ok and report.interrupted
    assert report.warnings and "lags" in report.warnings[0]
    assert "no run_end" in report.summary
    # the log says the run was opened and never ended: interrupted is plausible
    assert report.sealed == "open" and "never ended" in report.summary
    # a run.json edited by hand is no lag, even on an interrupted run
    data = json.loads(at_start)
    data["episodes"][0]["agent"] = "someone-else"
    (rec.path / "run.json").write_text(json.dumps(data))
    report = verify_run(rec.path)
    assert not report.ok and "agent: run.json says 'someone-else'" in report.summary


def test_a_run_json_from_before_derivation_is_checked_except_its_own_times(run: Path) -> None:
    """A format-1 run.json (no ``format``; its own save times; halts without stage and
    reason) still verifies, with a warning saying what is not checked."""
    data = json.loads((run / "run.json").read_text())
    del data["format"]
    data["created"], data["updated"] = "2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:09Z"
    (run / "run.json").write_text(json.dumps(data))
    report = verify_run(run)
    assert report.ok, report.summary
    assert any("format 1" in w and "created, updated" in w for w in report.warnings)
    data["episodes"][0]["agent"] = "null"  # anything else is still checked
    (run / "run.json").write_text(json.dumps(data))
    report = verify_run(run)
    assert not report.ok and "agent: run.json says 'null'" in report.summary


def test_keys_seal_and_verify_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `hazmat` command: keys init, a run sealed (signed) when it finishes,
    verify saying so, and a run the seal log does not know said plainly."""
    from hazmat.record.seals import SEAL_KEY_ENV

    from .conftest import hazmat

    key = tmp_path / "keys" / "seal.key"
    monkeypatch.setenv(SEAL_KEY_ENV, str(key))
    shown = hazmat("keys", "show", check=False)
    assert shown.returncode == 1 and "no signing key" in shown.stderr
    made = hazmat("keys", "init")
    public = made.stdout.strip()
    assert len(bytes.fromhex(public)) == 32 and str(key) in made.stderr
    again = hazmat("keys", "init", check=False)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert f"public key: {public}" in hazmat("keys", "show").stdout
    rec = Recorder.create(tmp_path / "runs", run_id="signed-cli")
    rec.finish()
    out = hazmat("verify", str(rec.path)).stdout
    assert f"sealed at seq 1 (signed by {public[:16]}...)" in out
    assert f"seal log: {os.environ[SEAL_LOG_ENV]}" in out
    sealed = hazmat("seal", str(rec.path))
    assert sealed.stdout.strip() == rec.last_hash and f"signed by {public}" in sealed.stderr
    bare = Recorder.create(tmp_path / "runs", run_id="never-sealed", seal_log=False)
    bare.finish()
    plain = hazmat("verify", str(bare.path))
    assert plain.returncode == 0 and "; not sealed (no entry for this run in" in plain.stdout
    strict = hazmat("verify", str(bare.path), "--sealed", check=False)
    assert strict.returncode == 5 and "BROKEN at seal: not sealed" in strict.stderr

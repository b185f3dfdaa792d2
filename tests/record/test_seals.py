"""The seal log outside the run directory, signing keys, and the Recorder's seals."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from hazmat.errors import ConfigError, RecordError
from hazmat.record import Recorder
from hazmat.record.seals import (
    SEAL_KEY_ENV,
    SEAL_LOG_ENV,
    SealLog,
    data_dir,
    init_key,
    key_path,
    latest_seal,
    load_signing_key,
    seal_log_path,
    trusted_public_key,
)
from hazmat.replay.verify import verify_run


def test_paths_follow_xdg_and_the_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SEAL_LOG_ENV)
    monkeypatch.delenv(SEAL_KEY_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert data_dir() == Path("/data/hazmat")
    assert seal_log_path() == Path("/data/hazmat/seals.jsonl")
    assert key_path() == Path("/data/hazmat/seal.key")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert seal_log_path() == Path("/home/someone/.local/share/hazmat/seals.jsonl")
    monkeypatch.setenv(SEAL_LOG_ENV, "/elsewhere/log.jsonl")
    assert seal_log_path() == Path("/elsewhere/log.jsonl")


def test_entries_link_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    log = SealLog(tmp_path / "s" / "seals.jsonl", key_file=tmp_path / "none.key")
    a = log.append("open", run_id="r", first="a" * 64, seq=0, hash="a" * 64)
    with log.path.open("ab") as f:
        f.write(b'{"kind":"seal","run_id":"r","fir')  # a writer killed mid-line
    b = log.append("seal", run_id="r", first="a" * 64, seq=4, hash="b" * 64, ended=True)
    read = log.read()
    assert [e.kind for e in read.entries] == ["open", "seal"] and read.lines == [1, 3]
    assert read.torn == [2] and read.problems == []
    assert b.prev != a.prev and a.sig is None and a.key is None
    assert (log.path.stat().st_mode & 0o777) == 0o600


def _append_many(path: str, who: int) -> None:
    log = SealLog(Path(path), key_file=Path(path).with_name("none.key"))
    for i in range(40):
        log.append("open", run_id=f"p{who}-{i}", first="0" * 64, seq=0, hash="0" * 64)


def test_concurrent_writers_keep_the_log_linked(tmp_path: Path) -> None:
    path = str(tmp_path / "seals.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    read = SealLog(Path(path)).read()
    assert len(read.entries) == 120 and read.problems == [] and read.torn == []


def test_keys_init_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k" / "seal.key"
    made, public = init_key(path)
    assert made == path and (path.stat().st_mode & 0o777) == 0o600
    assert trusted_public_key(path) == public
    key = load_signing_key(path)
    assert key is not None and key.public_hex == public
    with pytest.raises(ConfigError, match="exists already"):
        init_key(path)
    path.with_suffix(".pub").write_text("not hex\n")
    with pytest.raises(RecordError, match="not an Ed25519 public key"):
        trusted_public_key(path)
    path.with_suffix(".pub").unlink()
    assert trusted_public_key(path) == public  # from the private key
    assert trusted_public_key(tmp_path / "absent.key") is None
    (tmp_path / "bad.key").write_text("garbage")
    with pytest.raises(RecordError, match="not a PEM private key"):
        load_signing_key(tmp_path / "bad.key")


def test_every_finished_run_is_sealed_and_signed_with_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "keys" / "seal.key"
    _, public = init_key(key)
    monkeypatch.setenv(SEAL_KEY_ENV, str(key))
    rec = Recorder.create(tmp_path / "runs", run_id="signed")
    rec.bind("e").start(task_id="t", agent="a")
    rec.finish()
    assert rec.seal is not None and rec.seal.key == public and rec.seal.sig
    assert latest_seal("signed") == rec.seal and latest_seal("other") is None
    entries = [json.loads(line) for line in seal_log_path().read_text().splitlines()]
    assert [(e["kind"], e["seq"], e["ended"]) for e in entries] == [
        ("open", 0, False),
        ("seal", 2, True),
    ]
    report = verify_run(rec.path)
    assert report.ok and report.sealed == "sealed" and report.seal is not None
    assert report.seal.signed and f"signed by {public[:16]}..." in report.summary


def test_an_unwritable_seal_log_never_costs_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(SEAL_LOG_ENV, str(blocker / "seals.jsonl"))  # its parent is a file
    rec = Recorder.create(tmp_path / "runs", run_id="nolog")
    rec.finish()
    assert rec.seal is None
    events = [json.loads(line) for line in (rec.path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["run_start", "note", "run_end"]
    assert events[1]["kind"] == "seal_log" and "could not be written" in events[1]["message"]
    report = verify_run(rec.path)
    assert report.sealed == "not sealed" and not report.ok  # the log cannot even be read
    assert "cannot read the seal log" in report.summary


def test_an_interrupted_run_is_open_in_the_log_and_a_resume_reseals(tmp_path: Path) -> None:
    rec = Recorder.create(tmp_path / "runs", run_id="resume")
    rec.bind("e").start(task_id="t", agent="a")
    rec.close()  # killed
    report = verify_run(rec.path)
    assert report.ok and report.interrupted and report.sealed == "open"
    assert "opened at seq 0 and never ended" in report.summary
    again = Recorder.open(rec.path)
    again.bind("e").end("submitted")
    again.finish()
    report = verify_run(rec.path)
    assert report.ok and not report.interrupted and report.sealed == "sealed"
    kinds = [json.loads(line)["kind"] for line in seal_log_path().read_text().splitlines()]
    assert kinds == ["open", "open", "seal"]

"""Forged run directories (issue 13, items 10 and 11): each test does to a real halted
run exactly what the attack did, then checks that ``verify`` fails and says why.

The run is made by the real ``hazmat run`` (a scripted agent the default policy
halts at step 4 for a reverse shell); it finishes sealed in the session's seal log.
Every test forges a copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hazmat.record.seals import SealLog, init_key
from hazmat.record.summary import load_run_record
from hazmat.replay.timeline import runs_rows
from hazmat.replay.trace import load_run
from hazmat.replay.verify import seal_record, verify_run

from .forge import edit_run_json, read_events, write_chain, write_run_json

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture
def run(halted_run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / halted_run.name
    shutil.copytree(halted_run, dest)
    report = verify_run(dest)
    assert report.ok and report.sealed == "sealed", report.summary
    return dest


def _sealed_hash(run: Path) -> str:
    return str(json.loads((run / "run.json").read_text())["sealed_hash"])


# item 10: run.json fields outside the chain ------------------------------------------


@pytest.mark.parametrize(
    ("field", "forged", "shown"),
    [
        ("episodes.0.halt.rule", "benign-probe", "halt.rule: run.json says 'benign-probe'"),
        ("episodes.0.halt.evidence", "nothing seen", "halt.evidence: run.json says 'nothing"),
        ("episodes.0.halt.reason", "operator test", "halt.reason: run.json says 'operator"),
        ("episodes.0.task_id", "examples/harmless", "task_id: run.json says 'examples/harml"),
        ("episodes.0.agent", "null", "agent: run.json says 'null'"),
        ("episodes.0.steps", 1, "steps: run.json says 1, the events say 4"),
        ("episodes.0.error", "sandbox crashed", "error: run.json says 'sandbox crashed'"),
        ("config.policy", "none", "config.policy: run.json says 'none'"),
        ("config.seed", 7, "config.seed: run.json says 7, the events say 0"),
        ("agents", ["null"], "agents[0]: run.json says 'null'"),
    ],
)
def test_forged_run_json_field_fails_verify_even_with_expect(
    run: Path, field: str, forged: Any, shown: str
) -> None:
    expect = _sealed_hash(run)
    truth = load_run_record(run).model_dump(mode="json")
    edit_run_json(run, field, forged)
    for report in (verify_run(run), verify_run(run, expect=expect)):
        assert not report.ok, field
        assert report.first_broken is not None and report.first_broken.kind == "run.json"
        assert "differs from the events" in report.summary and shown in report.summary
    # what report/show read is derived from the events: the forged value is not in it
    assert load_run_record(run).model_dump(mode="json") == truth


def test_an_extra_field_in_run_json_fails_verify(run: Path) -> None:
    edit_run_json(run, "episodes.0.note_for_reviewer", "false positive, ignore")
    report = verify_run(run)
    assert not report.ok
    assert "note_for_reviewer: run.json says 'false positive" in report.summary


# item 11: the seal lives where a forger writes ----------------------------------------


def _halt_to_allow(events: list[dict[str, Any]]) -> None:
    """The forger's story: the reverse shell was allowed and the agent submitted."""
    for ev in events:
        if ev["event"] == "policy_decision" and ev["action"] == "halt":
            ev.update(action="allow", rules=[], reason="")
        if ev["event"] == "episode_end":
            ev.update(reason="submitted")


def test_full_rehash_with_a_rewritten_seal_fails_plain_verify(run: Path) -> None:
    events = read_events(run)
    sealed = events[-1]["seq"]  # run_end, the sealed event
    _halt_to_allow(events)
    write_chain(run, events)
    write_run_json(run, seal=True)  # run.json agrees with the forged events, seal included
    report = verify_run(run)
    assert not report.ok
    assert report.first_broken is not None and report.first_broken.kind == "seal"
    assert "the record was rewritten" in report.summary
    assert f"(seal at seq {sealed}): the event there hashes to" in report.summary


def test_a_rewrite_from_the_first_event_is_not_passed_off_as_unsealed(run: Path) -> None:
    events = read_events(run)
    _halt_to_allow(events)
    events[0]["ts"] = "2026-01-01T00:00:00.000000Z"  # even the first hash changes
    write_chain(run, events)
    write_run_json(run, seal=False)
    report = verify_run(run)
    assert not report.ok
    assert "knows run" in report.summary and "only with another first event" in report.summary


def test_forged_append_with_a_cleared_seal_fails_plain_verify(run: Path) -> None:
    events = read_events(run)
    end = events[-1]  # run_end, the sealed event
    forged = {k: v for k, v in end.items() if k not in ("status", "episodes")}
    forged.update(
        event="note", kind="operator", message="halt reviewed: false positive, episode valid"
    )
    events += [forged, dict(end)]
    write_chain(run, events)
    write_run_json(run, seal=False)
    report = verify_run(run)
    assert not report.ok
    assert f"extended after it was sealed at seq {end['seq']} (2 events since" in report.summary


def test_cut_tail_with_status_running_fails_plain_verify(run: Path) -> None:
    events = read_events(run)
    cut = [e for e in events if e["event"] not in ("episode_end", "run_end")]
    last = cut[-1]["seq"]
    write_chain(run, cut)
    data = write_run_json(run, seal=False)
    assert data["status"] == "running"  # looks like a run killed mid-episode
    report = verify_run(run)
    assert not report.ok
    assert f"the record stops at seq {last} (its tail was cut)" in report.summary


def test_torn_tail_after_a_seal_is_not_an_interruption(run: Path) -> None:
    events = read_events(run)
    sealed = events[-1]["seq"]
    write_chain(run, events[:-1], tail=b'{"seq":%d,"event":"run_e' % sealed)
    write_run_json(run, seal=False)
    report = verify_run(run)
    assert not report.ok
    messages = " | ".join(p.message for p in report.problems)
    assert "its tail was cut" in messages
    assert f"is torn, but the seal log says the run was sealed at seq {sealed}" in messages


def test_a_run_the_log_does_not_know_is_plainly_not_sealed(run: Path, tmp_path: Path) -> None:
    empty = SealLog(tmp_path / "other.jsonl", key_file=tmp_path / "no.key")
    report = verify_run(run, seal_log=empty)
    assert report.ok and report.sealed == "not sealed"
    assert "not sealed (no entry for this run in" in report.summary
    assert any("seal copy" in w for w in report.warnings)  # run.json claims a seal
    strict = verify_run(run, seal_log=empty, require_seal=True)
    assert not strict.ok and "not sealed" in strict.summary


# signed seals ----------------------------------------------------------------------------


@pytest.fixture
def signing(tmp_path: Path) -> SealLog:
    key_file = tmp_path / "keys" / "seal.key"
    _, public = init_key(key_file)
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "keys" / "seal.pub").read_text().strip() == public
    return SealLog(tmp_path / "signed" / "seals.jsonl", key_file=key_file)


def test_signed_seal_verifies_and_a_forger_cannot_reseal(run: Path, signing: SealLog) -> None:
    entry = seal_record(run, seal_log=signing)
    assert entry.sig and entry.key
    report = verify_run(run, seal_log=signing)
    assert report.ok and report.sealed == "sealed", report.summary
    assert f"signed by {entry.key[:16]}..." in report.summary
    # the forger rewrites the record and appends an unsigned seal for it (no key)
    events = read_events(run)
    _halt_to_allow(events)
    write_chain(run, events)
    write_run_json(run, seal=True)
    unsigned = SealLog(signing.path, key_file=run / "no-such.key")
    unsigned.append(
        "seal",
        run_id=events[0]["run_id"],
        first=read_events(run)[0]["hash"],
        seq=23,
        hash=read_events(run)[-1]["hash"],
        ended=True,
        status="complete",
    )
    report = verify_run(run, seal_log=signing)
    assert not report.ok
    messages = " | ".join(p.message for p in report.problems)
    assert "not signed, though the run's entry at line 1 is" in messages
    assert "the record was rewritten" in messages


def test_an_edited_signed_entry_or_a_removed_line_is_caught(
    run: Path, signing: SealLog, tmp_path: Path
) -> None:
    seal_record(run, seal_log=signing)
    other = tmp_path / "other-run"
    shutil.copytree(run, other)
    seal_record(other, seal_log=signing)  # same run id, same first event: two entries
    lines = signing.path.read_text().splitlines()
    assert len(lines) == 1  # already sealed at this hash, signed: nothing appended
    # change what the entry says, keep its signature
    entry = json.loads(lines[0])
    entry["status"] = "interrupted"
    signing.path.write_text(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
    report = verify_run(run, seal_log=signing)
    assert not report.ok and "the signature does not verify" in report.summary
    # a line removed from the middle of the log breaks its links
    log = SealLog(tmp_path / "log2" / "seals.jsonl", key_file=signing.key_file)
    for i in range(3):
        log.append("open", run_id=f"other-{i}", first="0" * 64, seq=0, hash="0" * 64)
    seal_record(run, seal_log=log)
    kept = log.path.read_text().splitlines()
    del kept[1]
    log.path.write_text("\n".join(kept) + "\n")
    report = verify_run(run, seal_log=log)
    assert not report.ok
    assert "seal log line 2: does not link to the line before it" in report.summary


def test_a_seal_signed_by_another_key_is_not_trusted(run: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs" / "seal.key"
    init_key(theirs)
    ours = tmp_path / "ours" / "seal.key"
    init_key(ours)
    log_path = tmp_path / "log" / "seals.jsonl"
    seal_record(run, seal_log=SealLog(log_path, key_file=theirs))
    report = verify_run(run, seal_log=SealLog(log_path, key_file=ours))
    assert not report.ok and "not by the configured key" in report.summary


def test_show_and_runs_read_the_events_not_a_forged_run_json(run: Path) -> None:
    edit_run_json(run, "episodes.0.status", "submitted")
    edit_run_json(run, "episodes.0.halt", None)
    edit_run_json(run, "run_id", "someone-elses-run")
    (row,) = runs_rows(run.parent)
    assert row["halted"] == ["ep0001"] and row["run_id"] == run.name
    trace = load_run(run)
    assert trace.run_id == run.name and trace.episode("ep0001").reason == "halted"


def test_an_edited_halt_snapshot_file_fails_verify(run: Path) -> None:
    """The halt snapshot lives outside the chain; the chain holds its digests."""
    (episode,) = [p for p in (run / "episodes").iterdir() if p.is_dir()]
    halt = episode / "halt.json"
    assert halt.is_file()
    data = json.loads(halt.read_text())
    data["rule"] = "benign-probe"
    halt.write_text(json.dumps(data))
    report = verify_run(run)
    assert not report.ok
    assert f"halt snapshot file episodes/{episode.name}/halt.json is changed" in report.summary
    halt.unlink()
    assert "halt.json is missing" in verify_run(run).summary

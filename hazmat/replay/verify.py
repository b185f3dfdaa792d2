"""Verify a recorded run: the hash chain, every blob, and run.json against the events.

:func:`verify_run` recomputes the chain of ``events.jsonl`` (the rule in
:mod:`hazmat.record.events`), checks ``seq`` continuity, checks every blob
referenced by an event and every file in ``blobs/`` against its digest, and
checks that ``run.json`` says what the events say (episodes, end reasons,
progress, milestones, decisions, run status, seal). It reports the first broken
link (line, seq, event, what differs).

A run whose writer was killed (torn last line, or no ``run_end``) verifies up
to its last complete event and is reported as ``interrupted``; that is not a
failure. Where run.json merely lags the events of an interrupted run (the
writer died between the event and the summary), that is a warning.

:func:`seal_run` writes the final hash to run.json (``sealed_hash``,
``sealed_seq``) so it can be stored elsewhere and compared later with
``verify_run(..., expect=HASH)``.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from hazmat.errors import RecordError
from hazmat.record.chain import EVENTS_FILE, ChainProblem, EpisodeTally, walk_chain
from hazmat.record.events import BLOB_DIGEST_RE, RUN_END, RUN_START, iter_blob_refs
from hazmat.record.store import RUN_FILE, EpisodeRecord, RunRecord, RunStore

__all__ = ["VerifyReport", "seal_run", "verify_run"]


class VerifyReport(BaseModel):
    """The outcome of :func:`verify_run`. ``ok`` is True only when nothing is broken."""

    run_dir: str
    run_id: str | None = None
    ok: bool = False
    ended: bool = False
    """The last event is ``run_end`` (the writer closed the record)."""
    interrupted: bool = False
    """Not ended (writer killed or still running; torn last line), or ended as interrupted."""
    events: int = 0
    lines: int = 0
    valid_up_to_line: int = 0
    """Last line of the file that holds a verified event (1-based; 0 when none)."""
    torn_line: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    blobs_checked: int = 0
    blob_refs: int = 0
    sealed_hash: str | None = None
    expect: str | None = None
    expect_matches: bool | None = None
    first_broken: ChainProblem | None = None
    problems: list[ChainProblem] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    summary: str = ""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_blobs(
    run_dir: Path, events: list[dict[str, Any]], lines: list[int], report: VerifyReport
) -> None:
    blobs = run_dir / "blobs"
    actual: dict[str, tuple[str, int] | None] = {}

    def file_digest(digest: str) -> tuple[str, int] | None:
        if digest not in actual:
            p = blobs / digest
            try:
                actual[digest] = (_sha256_file(p), p.stat().st_size)
            except OSError:
                actual[digest] = None
        return actual[digest]

    for ev, line in zip(events, lines, strict=True):
        for ref in iter_blob_refs(ev):
            report.blob_refs += 1
            digest, size = ref["blob"], ref["size"]
            got = file_digest(digest)
            name = ev.get("event") if isinstance(ev.get("event"), str) else None
            seq = ev.get("seq") if isinstance(ev.get("seq"), int) else None
            if got is None:
                report.problems.append(
                    ChainProblem(
                        line=line,
                        seq=seq,
                        event=name,
                        kind="blob",
                        message=f"blob {digest[:16]}... is missing",
                    )
                )
            elif got[0] != digest:
                report.problems.append(
                    ChainProblem(
                        line=line,
                        seq=seq,
                        event=name,
                        kind="blob",
                        message=f"blob {digest[:16]}... content hashes to {got[0][:16]}...",
                    )
                )
            elif got[1] != size:
                report.problems.append(
                    ChainProblem(
                        line=line,
                        seq=seq,
                        event=name,
                        kind="blob",
                        message=f"blob {digest[:16]}... is {got[1]} bytes, event says {size}",
                    )
                )
    if blobs.is_dir():
        for p in sorted(blobs.iterdir()):
            if p.name.startswith("."):
                report.warnings.append(f"blobs/{p.name}: unfinished blob write (ignored)")
                continue
            if not BLOB_DIGEST_RE.match(p.name):
                report.problems.append(
                    ChainProblem(kind="blob", message=f"blobs/{p.name}: not a sha256 name")
                )
                continue
            got = file_digest(p.name)
            if got is not None and got[0] != p.name:
                already = any(
                    pr.kind == "blob" and p.name[:16] in pr.message for pr in report.problems
                )
                if not already:
                    report.problems.append(
                        ChainProblem(
                            kind="blob",
                            message=f"blobs/{p.name[:16]}... content hashes to {got[0][:16]}...",
                        )
                    )
    report.blobs_checked = sum(1 for v in actual.values() if v is not None)


def _episode_diffs(want: EpisodeRecord, have: EpisodeRecord) -> list[str]:
    diffs: list[str] = []
    if want.status != have.status:
        diffs.append(f"status {have.status!r}, events say {want.status!r}")
    if want.status is None or have.status is None:
        return diffs
    if not math.isclose(want.progress, have.progress, abs_tol=1e-9):
        diffs.append(f"progress {have.progress}, events say {want.progress}")
    if want.depth != have.depth:
        diffs.append(f"depth {have.depth!r}, events say {want.depth!r}")
    if [m.id for m in want.milestones] != [m.id for m in have.milestones]:
        diffs.append(
            f"milestones {[m.id for m in have.milestones]}, events say "
            f"{[m.id for m in want.milestones]}"
        )
    if want.decisions != have.decisions:
        diffs.append(f"decisions {have.decisions}, events say {want.decisions}")
    if want.limit_hit != have.limit_hit:
        diffs.append(f"limit_hit {have.limit_hit!r}, events say {want.limit_hit!r}")
    return diffs


def _check_run_json(
    record: RunRecord, events: list[dict[str, Any]], lines: list[int], report: VerifyReport
) -> None:
    tally = EpisodeTally()
    first_line: dict[str, int] = {}
    for ev, line in zip(events, lines, strict=True):
        tally.apply(ev)
        eid = ev.get("episode_id")
        if isinstance(eid, str):
            first_line.setdefault(eid, line)
    if events and events[0].get("event") != RUN_START:
        report.problems.append(
            ChainProblem(
                line=lines[0],
                seq=events[0].get("seq"),
                event=str(events[0].get("event")),
                kind="run.json",
                message="the first event is not run_start",
            )
        )
    lag = not report.ended
    recorded = {e.episode_id: e for e in record.episodes}
    for eid, want in tally.episodes.items():
        have = recorded.get(eid)
        if have is None:
            msg = f"run.json has no episode {eid!r}, which the events start"
            if lag:
                report.warnings.append(msg + " (run.json lags an interrupted run)")
            else:
                report.problems.append(
                    ChainProblem(line=first_line.get(eid), kind="run.json", message=msg)
                )
            continue
        if lag and have.status is None and want.status is not None:
            report.warnings.append(
                f"run.json episode {eid!r} has no end reason; events say {want.status!r} "
                "(run.json lags an interrupted run)"
            )
            continue
        diffs = _episode_diffs(want, have)
        if diffs:
            report.problems.append(
                ChainProblem(
                    line=first_line.get(eid),
                    kind="run.json",
                    message=f"episode {eid!r}: run.json says " + "; ".join(diffs),
                )
            )
    for eid in recorded:
        if eid not in tally.episodes:
            report.problems.append(
                ChainProblem(
                    kind="run.json", message=f"run.json episode {eid!r} has no episode_start event"
                )
            )
    if report.ended:
        end = events[-1]
        if record.status != end.get("status"):
            report.problems.append(
                ChainProblem(
                    line=lines[-1],
                    seq=end.get("seq"),
                    event=RUN_END,
                    kind="run.json",
                    message=f"run.json status {record.status!r}, run_end says {end.get('status')!r}",
                )
            )
    elif record.status == "complete":
        if report.torn_line is not None:
            report.problems.append(
                ChainProblem(
                    line=report.torn_line,
                    kind="unparseable",
                    message="not a JSON object, and run.json says the run completed",
                )
            )
        else:
            report.problems.append(
                ChainProblem(
                    line=lines[-1] if lines else None,
                    kind="run.json",
                    message="run.json status 'complete', but the events do not end with run_end",
                )
            )
    if record.sealed_hash is not None:
        found = [
            (ev, line)
            for ev, line in zip(events, lines, strict=True)
            if ev.get("hash") == record.sealed_hash
        ]
        if not found:
            report.problems.append(
                ChainProblem(
                    kind="seal",
                    message=f"sealed hash {record.sealed_hash[:16]}... is not in the chain",
                )
            )
        elif found[0][0] is not events[-1]:
            ev, line = found[0]
            report.problems.append(
                ChainProblem(
                    line=line,
                    seq=ev.get("seq"),
                    event=str(ev.get("event")),
                    kind="seal",
                    message=f"the record was extended after it was sealed at seq {ev.get('seq')} "
                    f"({len(events) - events.index(ev) - 1} events since)",
                )
            )
        elif record.sealed_seq is not None and events[-1].get("seq") != record.sealed_seq:
            report.problems.append(
                ChainProblem(
                    line=lines[-1],
                    kind="seal",
                    message=f"sealed_seq {record.sealed_seq}, sealed hash is at seq "
                    f"{events[-1].get('seq')}",
                )
            )


_CHAIN_KINDS = ("hash", "prev", "seq", "run_id", "unparseable")


def _rank(p: ChainProblem) -> tuple[int, int]:
    """Chain breaks first, then blobs, then run.json/seal/expect; earliest line first."""
    tier = 0 if p.kind in _CHAIN_KINDS else 1 if p.kind == "blob" else 2
    return (tier, p.line if p.line is not None else 1 << 62)


def verify_run(run_dir: str | os.PathLike[str], *, expect: str | None = None) -> VerifyReport:
    """Check a run directory; never raises for a broken record (the report says so).

    ``expect`` is a hash stored elsewhere (from :func:`seal_run`); it must be
    the hash of the last event. Raises :class:`RecordError` only when
    ``run_dir`` is not a run directory at all (neither run.json nor events.jsonl).
    """
    path = Path(run_dir)
    events_file = path / EVENTS_FILE
    run_file = path / RUN_FILE
    if not events_file.is_file() and not run_file.is_file():
        raise RecordError(f"{path}: not a run directory (no run.json, no events.jsonl)")
    report = VerifyReport(run_dir=str(path), expect=expect)
    record: RunRecord | None = None
    try:
        record = RunStore.open(path).record
        report.run_id = record.run_id
        report.sealed_hash = record.sealed_hash
    except RecordError as exc:
        report.problems.append(ChainProblem(kind="run.json", message=exc.message))
    walk = walk_chain(events_file, run_id=report.run_id)
    report.problems.extend(walk.problems)
    report.events = len(walk.events)
    report.lines = walk.line_count
    report.torn_line = walk.torn_line
    if walk.events:
        last = walk.events[-1]
        report.last_seq = last.get("seq") if isinstance(last.get("seq"), int) else None
        report.last_hash = last.get("hash") if isinstance(last.get("hash"), str) else None
        report.valid_up_to_line = walk.lines[-1]
        report.run_id = report.run_id or (
            last.get("run_id") if isinstance(last.get("run_id"), str) else None
        )
        report.ended = last.get("event") == RUN_END and walk.torn_line is None
    else:
        report.problems.append(ChainProblem(kind="empty", message="no events recorded"))
    report.interrupted = not report.ended or (walk.events[-1].get("status") == "interrupted")
    _check_blobs(path, walk.events, walk.lines, report)
    if record is not None:
        report.torn_line = walk.torn_line
        _check_run_json(record, walk.events, walk.lines, report)
    if expect is not None:
        report.expect_matches = expect == report.last_hash
        if not report.expect_matches:
            at = [
                (ev, ln)
                for ev, ln in zip(walk.events, walk.lines, strict=True)
                if ev.get("hash") == expect
            ]
            if at:
                ev, ln = at[0]
                msg = (
                    f"expected hash is event seq {ev.get('seq')} (line {ln}); the record "
                    f"continues for {len(walk.events) - walk.events.index(ev) - 1} more events"
                )
            else:
                msg = f"expected hash {expect[:16]}... is not in the chain"
            report.problems.append(
                ChainProblem(line=at[0][1] if at else None, kind="expect", message=msg)
            )
    report.ok = not report.problems
    if report.problems:
        first = min(report.problems, key=_rank)
        report.first_broken = first
        where = f"line {first.line}" if first.line is not None else first.kind
        if first.seq is not None:
            where += f" (seq {first.seq}"
            where += f", {first.event})" if first.event else ")"
        more = len(report.problems) - 1
        report.summary = f"BROKEN at {where}: {first.message}" + (
            f" [+{more} more problem(s)]" if more else ""
        )
    else:
        head = "ok (interrupted)" if report.interrupted else "ok"
        detail = f"{report.events} events, valid up to line {report.valid_up_to_line}"
        if report.torn_line is not None:
            detail += f", torn line {report.torn_line} skipped"
        elif not report.ended:
            detail += ", no run_end"
        report.summary = (
            f"{head}: {detail}, {report.blobs_checked} blob(s) checked, "
            f"last hash {report.last_hash}"
        )
    return report


def seal_run(run_dir: str | os.PathLike[str]) -> str:
    """Write the final hash (and its seq) to run.json and return it.

    Raises :class:`RecordError` when the run does not verify, has no events, or
    is still being written by a Recorder.
    """
    path = Path(run_dir)
    try:
        fd = os.open(path / EVENTS_FILE, os.O_RDONLY)
    except OSError as exc:
        raise RecordError(f"{path}: cannot seal: no events.jsonl ({exc.strerror})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise RecordError(f"{path}: cannot seal: a recorder is still writing this run") from exc
        report = verify_run(path)
        if not report.ok:
            raise RecordError(f"{path}: cannot seal: {report.summary}")
        if report.last_hash is None:  # pragma: no cover - an empty run does not verify
            raise RecordError(f"{path}: cannot seal: no events")
        RunStore.open(path).update(sealed_hash=report.last_hash, sealed_seq=report.last_seq)
    finally:
        os.close(fd)
    return report.last_hash

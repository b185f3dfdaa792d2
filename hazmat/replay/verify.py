"""Verify a recorded run: the hash chain, every blob, run.json against the events, and
the seal log.

:func:`verify_run` recomputes the chain of ``events.jsonl`` (the rule in
:mod:`hazmat.record.events`), checks ``seq`` continuity, checks every blob
referenced by an event and every file in ``blobs/`` against its digest, derives
what ``run.json`` must say from the events (:mod:`hazmat.record.summary`: every
field, config, task ids, agents, episodes, halts, errors, steps, status) and fails
on any difference, and checks the run against the seal log outside the run
directory (:mod:`hazmat.record.seals`). It reports the first broken link (line,
seq, event, what differs).

A run whose writer was killed (torn last line, or no ``run_end``) verifies up
to its last complete event and is reported as ``interrupted``; that is not a
failure, unless the seal log says the run was sealed (then nothing was still
writing it: a cut or torn tail is tampering). A run.json one save point behind
the events of an interrupted run (the writer died between an event and the
summary) is a warning. A run the seal log knows nothing about is reported
plainly as ``not sealed``.

:func:`seal_record` verifies a run and appends a ``seal`` entry to the seal log
(signed when a key is configured), copies it to run.json (``sealed_hash``,
``sealed_seq``) and returns it; print the hash and keep it elsewhere too, then
compare later with ``verify_run(..., expect=HASH)``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from hazmat.errors import RecordError
from hazmat.record.chain import EVENTS_FILE, ChainProblem, walk_chain
from hazmat.record.events import (
    BLOB_DIGEST_RE,
    NOTE,
    RUN_END,
    RUN_START,
    SNAPSHOT_FILES,
    iter_blob_refs,
)
from hazmat.record.seals import SealCheck, SealEntry, SealLog, check_run_seals
from hazmat.record.store import RUN_FILE, RunRecord, RunStore
from hazmat.record.summary import (
    FORMAT,
    LEGACY_UNCHECKED,
    RunSummary,
    diff_records,
    is_save_point,
)

__all__ = ["VerifyReport", "seal_record", "seal_run", "verify_run"]


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
    """run.json's copy of the seal (checked, never trusted alone)."""
    sealed: Literal["sealed", "open", "not sealed"] = "not sealed"
    """What the seal log says: ``sealed``, ``open`` (opened, never ended) or ``not sealed``."""
    seal: SealCheck | None = None
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


def _check_snapshot_files(
    run_dir: Path, events: list[dict[str, Any]], lines: list[int], report: VerifyReport
) -> None:
    """Halt snapshots live outside the chain; their digests are in it (``snapshot_files``)."""
    for ev, line in zip(events, lines, strict=True):
        if ev.get("event") != NOTE or ev.get("kind") != SNAPSHOT_FILES:
            continue
        files = ev.get("files")
        for rel, want in files.items() if isinstance(files, dict) else ():
            target = (run_dir / str(rel)).resolve()
            if not target.is_relative_to(run_dir.resolve()):
                got = "outside the run directory"
            else:
                try:
                    got = _sha256_file(target)
                except OSError:
                    got = "missing"
            if got != want:
                seq = ev.get("seq") if isinstance(ev.get("seq"), int) else None
                what = got if got in ("missing", "outside the run directory") else "changed"
                report.problems.append(
                    ChainProblem(
                        line=line,
                        seq=seq,
                        event=NOTE,
                        kind="snapshot",
                        message=f"halt snapshot file {rel} is {what} since it was recorded",
                    )
                )


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
                wrong = "is missing"
            elif got[0] != digest:
                wrong = f"content hashes to {got[0][:16]}..."
            elif got[1] != size:
                wrong = f"is {got[1]} bytes, event says {size}"
            else:
                continue
            report.problems.append(
                ChainProblem(line=line, seq=seq, event=name, kind="blob",
                             message=f"blob {digest[:16]}... {wrong}")
            )  # fmt: skip
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


def _read_run_json(
    path: Path, report: VerifyReport
) -> tuple[dict[str, Any] | None, RunRecord | None]:
    """run.json as raw JSON data and as a RunRecord (None, None with a problem when bad)."""
    file = path / RUN_FILE
    try:
        data = json.loads(file.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data, RunRecord.model_validate(data)
    except FileNotFoundError:
        msg = f"{file}: no run.json here"
    except OSError as exc:
        msg = f"{file}: cannot read: {exc.strerror or exc}"
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(document)"
            msg = f"{file}: {loc}: {first['msg']}"
        else:
            msg = f"{file}: not JSON: {exc}"
    report.problems.append(ChainProblem(kind="run.json", message=msg))
    return None, None


def _derived_at_save_points(
    events: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int | None]:
    """The derivation at the last save point, at the one before, and the seq of the last."""
    points = [i for i, ev in enumerate(events) if is_save_point(ev)]
    if not points:
        return None, None, None
    wanted = set(points[-2:])
    summary = RunSummary()
    snaps: dict[int, dict[str, Any]] = {}
    for i, ev in enumerate(events[: points[-1] + 1]):
        summary.apply(ev)
        if i in wanted:
            snaps[i] = summary.dump()
    last = snaps[points[-1]]
    before = snaps[points[-2]] if len(points) > 1 else None
    seq = events[points[-1]].get("seq")
    return last, before, seq if isinstance(seq, int) else None


def _check_run_json(
    data: dict[str, Any],
    record: RunRecord,
    events: list[dict[str, Any]],
    lines: list[int],
    report: VerifyReport,
) -> None:
    """run.json must be what the events derive to (module docs); the seal copy must hold."""
    first_line: dict[str, int] = {}
    for ev, line in zip(events, lines, strict=True):
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
    want, before, at_seq = _derived_at_save_points(events)
    legacy = record.format < FORMAT
    if legacy:
        report.warnings.append(
            f"run.json is format {record.format}, written before run.json was derived from "
            f"the events: everything in it is checked except {', '.join(LEGACY_UNCHECKED)}"
        )
    if want is not None:
        diffs = diff_records(want, data, legacy=legacy)
        lagging = (
            bool(diffs)
            and not report.ended
            and before is not None
            and not diff_records(before, data, legacy=legacy)
        )
        if lagging:
            report.warnings.append(
                f"run.json says what the events said before seq {at_seq} (the writer died "
                "before run.json caught up; run.json lags an interrupted run)"
            )
        elif diffs:
            _report_diffs(diffs, data, events, lines, first_line, report)
    _check_seal_copy(record, events, lines, report)


def _report_diffs(
    diffs: list[tuple[str | None, str]],
    data: dict[str, Any],
    events: list[dict[str, Any]],
    lines: list[int],
    first_line: dict[str, int],
    report: VerifyReport,
) -> None:
    grouped: dict[str | None, list[str]] = {}
    for eid, text in diffs:
        grouped.setdefault(eid, []).append(text)
    for eid, texts in grouped.items():
        if eid is None:
            if (
                report.torn_line is not None
                and data.get("status") == "complete"
                and not report.ended
            ):
                report.problems.append(
                    ChainProblem(
                        line=report.torn_line,
                        kind="unparseable",
                        message="not a JSON object, and run.json says the run completed",
                    )
                )
            elif data.get("status") == "complete" and not report.ended:
                texts = [
                    "status 'complete', but the events do not end with run_end",
                    *[t for t in texts if not t.startswith("status:")],
                ]
            head = "run.json differs from the events: "
            line = None
        else:
            head = f"run.json episode {eid!r} differs from the events: "
            line = first_line.get(eid)
        report.problems.append(
            ChainProblem(line=line, kind="run.json", message=head + "; ".join(texts))
        )


def _check_seal_copy(
    record: RunRecord, events: list[dict[str, Any]], lines: list[int], report: VerifyReport
) -> None:
    """run.json's ``sealed_hash``/``sealed_seq`` must name the last event of the chain."""
    if record.sealed_hash is None:
        return
    found = [
        (ev, line)
        for ev, line in zip(events, lines, strict=True)
        if ev.get("hash") == record.sealed_hash
    ]
    if not found:
        report.problems.append(
            ChainProblem(
                kind="seal",
                message=f"run.json's sealed hash {record.sealed_hash[:16]}... is not in the chain",
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
                f"({len(events) - events.index(ev) - 1} events since; run.json's seal copy)",
            )
        )
    elif record.sealed_seq is not None and events[-1].get("seq") != record.sealed_seq:
        report.problems.append(
            ChainProblem(
                line=lines[-1],
                kind="seal",
                message=f"run.json's sealed_seq {record.sealed_seq}, sealed hash is at seq "
                f"{events[-1].get('seq')}",
            )
        )


def _check_seal_log(
    events: list[dict[str, Any]],
    report: VerifyReport,
    seal_log: SealLog | None,
    trusted_key: str | Literal[False] | None,
    require_seal: bool,
) -> None:
    try:
        check = check_run_seals(
            report.run_id,
            events,
            torn_line=report.torn_line,
            log=seal_log,
            trusted_key=trusted_key,
        )
    except RecordError as exc:
        report.problems.append(ChainProblem(kind="seal", message=exc.one_line()))
        return
    report.seal = check
    report.sealed = check.state
    for p in check.problems:
        report.problems.append(ChainProblem(kind="seal", message=p.message))
    report.warnings.extend(check.warnings)
    if check.state != "sealed" and report.sealed_hash is not None and not check.problems:
        report.warnings.append(
            f"run.json holds a seal copy ({report.sealed_hash[:16]}...), but the seal log "
            f"{check.log} has no seal for this run"
        )
    if require_seal and check.state != "sealed":
        report.problems.append(ChainProblem(kind="seal", message=check.phrase))


_CHAIN_KINDS = ("hash", "prev", "seq", "run_id", "unparseable")
_TIERS = {"blob": 1, "seal": 2, "run.json": 3}


def _rank(p: ChainProblem) -> tuple[int, int]:
    """Chain breaks first, then blobs, the seal, run.json, expect; earliest line first."""
    tier = 0 if p.kind in _CHAIN_KINDS else _TIERS.get(p.kind, 4)
    return (tier, p.line if p.line is not None else 1 << 62)


def verify_run(
    run_dir: str | os.PathLike[str],
    *,
    expect: str | None = None,
    seal_log: SealLog | None = None,
    trusted_key: str | Literal[False] | None = False,
    require_seal: bool = False,
) -> VerifyReport:
    """Check a run directory; never raises for a broken record (the report says so).

    ``expect`` is a hash stored elsewhere (from :func:`seal_record`); it must be
    the hash of the last event. ``seal_log`` is the seal log to check against
    (default: the user's, :class:`SealLog`); ``trusted_key`` the public key seals
    must be signed with (default: the configured key; None: any valid signature).
    ``require_seal`` makes a run the seal log has not sealed a failure.
    Raises :class:`RecordError` only when ``run_dir`` is not a run directory at all
    (neither run.json nor events.jsonl).
    """
    path = Path(run_dir)
    events_file = path / EVENTS_FILE
    run_file = path / RUN_FILE
    if not events_file.is_file() and not run_file.is_file():
        raise RecordError(f"{path}: not a run directory (no run.json, no events.jsonl)")
    report = VerifyReport(run_dir=str(path), expect=expect)
    data, record = _read_run_json(path, report)
    if record is not None:
        report.run_id = record.run_id
        report.sealed_hash = record.sealed_hash
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
    _check_snapshot_files(path, walk.events, walk.lines, report)
    _check_seal_log(walk.events, report, seal_log, trusted_key, require_seal)
    if data is not None and record is not None:
        _check_run_json(data, record, walk.events, walk.lines, report)
    if expect is not None:
        _check_expect(expect, walk.events, walk.lines, report)
    _summarize(report)
    return report


def _check_expect(
    expect: str, events: list[dict[str, Any]], lines: list[int], report: VerifyReport
) -> None:
    report.expect_matches = expect == report.last_hash
    if report.expect_matches:
        return
    at = [(ev, ln) for ev, ln in zip(events, lines, strict=True) if ev.get("hash") == expect]
    if at:
        ev, ln = at[0]
        msg = (
            f"expected hash is event seq {ev.get('seq')} (line {ln}); the record "
            f"continues for {len(events) - events.index(ev) - 1} more events"
        )
    else:
        msg = f"expected hash {expect[:16]}... is not in the chain"
    report.problems.append(ChainProblem(line=at[0][1] if at else None, kind="expect", message=msg))


def _summarize(report: VerifyReport) -> None:
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
        return
    head = "ok (interrupted)" if report.interrupted else "ok"
    detail = f"{report.events} events, valid up to line {report.valid_up_to_line}"
    if report.torn_line is not None:
        detail += f", torn line {report.torn_line} skipped"
    elif not report.ended:
        detail += ", no run_end"
    seal = report.seal.phrase if report.seal is not None else "seal log not checked"
    report.summary = (
        f"{head}: {detail}, {report.blobs_checked} blob(s) checked, "
        f"last hash {report.last_hash}; {seal}"
    )


def seal_record(run_dir: str | os.PathLike[str], *, seal_log: SealLog | None = None) -> SealEntry:
    """Verify the run, append a ``seal`` entry for its last event to the seal log
    (signed when a key is configured), copy it to run.json, and return it.

    Sealing a run the log has already sealed at its last event, as signed as it
    can be, returns that entry instead of adding another.

    Raises :class:`RecordError` when the run does not verify, has no events, is
    still being written by a Recorder, or the seal log cannot be written.
    """
    path = Path(run_dir)
    log = seal_log or SealLog()
    try:
        fd = os.open(path / EVENTS_FILE, os.O_RDONLY)
    except OSError as exc:
        raise RecordError(f"{path}: cannot seal: no events.jsonl ({exc.strerror})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise RecordError(f"{path}: cannot seal: a recorder is still writing this run") from exc
        report = verify_run(path, seal_log=log)
        if not report.ok:
            raise RecordError(f"{path}: cannot seal: {report.summary}")
        if report.last_hash is None or report.last_seq is None or report.run_id is None:
            raise RecordError(f"{path}: cannot seal: no events")  # pragma: no cover
        walk = walk_chain(path / EVENTS_FILE, run_id=report.run_id)
        first = str(walk.events[0].get("hash"))
        check = report.seal
        entry: SealEntry | None = None
        if (
            check is not None
            and check.state == "sealed"
            and check.hash == report.last_hash
            and (check.signed or check.trusted_key is None)
        ):
            entry = next(
                e
                for e in reversed(log.read().entries)
                if e.run_id == report.run_id and e.kind == "seal"
            )
        else:
            entry = log.append(
                "seal",
                run_id=report.run_id,
                first=first,
                seq=report.last_seq,
                hash=report.last_hash,
                ended=report.ended,
                status=str(walk.events[-1].get("status")) if report.ended else None,
                run_dir=str(path.resolve()),
            )
        store = RunStore.open(path)
        raw = json.loads((path / RUN_FILE).read_bytes())
        raw.update(sealed_hash=entry.hash, sealed_seq=entry.seq)
        store.write(raw)
    finally:
        os.close(fd)
    return entry


def seal_run(run_dir: str | os.PathLike[str], *, seal_log: SealLog | None = None) -> str:
    """:func:`seal_record`, returning the sealed hash (what ``hazmat seal`` prints)."""
    return seal_record(run_dir, seal_log=seal_log).hash

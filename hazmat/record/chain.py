"""The hash chain of ``events.jsonl``: the canonical form, reading it back, and the
per-episode summary that events imply.

Writers (:class:`hazmat.record.log.Recorder`) and readers (resume,
:func:`hazmat.replay.verify.verify_run`, show, replay) share these functions so
there is one definition of "a valid line". The rule itself is in
:mod:`hazmat.record.events`.

Torn lines: a line that is not a JSON object is *torn* (a writer was killed while
writing it). A torn line at the end of the file means the run was interrupted;
the chain is valid up to the line before. When a run is resumed, the torn bytes
stay where they are, a newline ends them, and the first event appended is a
``note`` with ``kind="torn_line"`` and ``line=<its line number>``; readers skip
a torn line only when that note follows it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, Field

from hazmat.errors import RecordError
from hazmat.record.events import (
    EPISODE_END,
    EPISODE_START,
    ERROR,
    GENESIS_HASH,
    LIMIT,
    MILESTONE,
    MODEL_CALL,
    NOTE,
    POLICY_DECISION,
    is_blob_ref,
)
from hazmat.record.store import EpisodeRecord, Halt, MilestoneHit

__all__ = [
    "EVENTS_FILE",
    "ChainProblem",
    "ChainWalk",
    "EpisodeTally",
    "canonical_bytes",
    "compute_hash",
    "load_blob",
    "resolve_blobs",
    "walk_chain",
]

EVENTS_FILE: Final = "events.jsonl"
TORN_NOTE_KIND: Final = "torn_line"


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 JSON of ``obj`` (sorted keys, no spaces, non-ASCII kept)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def compute_hash(event: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``event`` without its ``hash`` key."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


class ChainProblem(BaseModel):
    """One broken link: where (1-based line, seq, event name) and what differs."""

    line: int | None = None
    seq: int | None = None
    event: str | None = None
    kind: str
    message: str


class ChainWalk(BaseModel):
    """What reading ``events.jsonl`` found.

    ``events`` are the parsed events whose line held a JSON object (in file
    order) with their 1-based ``lines``; ``problems`` the broken links;
    ``torn_line`` the line number of a torn last line (interrupted writer);
    ``last_hash`` / ``next_seq`` where a writer continues the chain.
    """

    events: list[dict[str, Any]] = Field(default_factory=list)
    lines: list[int] = Field(default_factory=list)
    problems: list[ChainProblem] = Field(default_factory=list)
    torn_line: int | None = None
    torn_bytes: int = 0
    ends_with_newline: bool = True
    last_hash: str = GENESIS_HASH
    next_seq: int = 0
    line_count: int = 0


def walk_chain(path: Path, *, run_id: str | None = None) -> ChainWalk:
    """Read ``path`` (an events.jsonl) and check every link of the chain.

    Checks per line: a JSON object; ``hash`` equals the recomputed hash; ``prev``
    equals the previous line's hash (64 zeros first); ``seq`` counts from 0 by 1;
    ``run_id`` matches (when given). After a broken link the walk resynchronises
    on the line's own ``hash``/``seq`` so one edit is reported once. A missing
    file reads as empty. Raises :class:`RecordError` only when the file cannot
    be read.
    """
    walk = ChainWalk()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return walk
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data:
        return walk
    walk.ends_with_newline = data.endswith(b"\n")
    raw_lines = data.split(b"\n")
    if walk.ends_with_newline:
        raw_lines.pop()
    walk.line_count = len(raw_lines)
    prev = GENESIS_HASH
    seq = 0
    pending_torn: int | None = None
    for i, raw in enumerate(raw_lines):
        lineno = i + 1
        obj: Any
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            if lineno == len(raw_lines):
                walk.torn_line = lineno
                walk.torn_bytes = len(raw)
            elif pending_torn is None:
                pending_torn = lineno
            else:
                walk.problems.append(
                    ChainProblem(line=lineno, kind="unparseable", message="not a JSON object")
                )
            continue
        name = obj.get("event") if isinstance(obj.get("event"), str) else None
        oseq = obj.get("seq") if isinstance(obj.get("seq"), int) else None
        if pending_torn is not None:
            if not (
                name == NOTE
                and obj.get("kind") == TORN_NOTE_KIND
                and obj.get("line") == pending_torn
            ):
                walk.problems.append(
                    ChainProblem(
                        line=pending_torn,
                        kind="unparseable",
                        message="not a JSON object, and no torn_line note follows it",
                    )
                )
            pending_torn = None
        walk.events.append(obj)
        walk.lines.append(lineno)
        diffs: list[str] = []
        stored = obj.get("hash")
        actual = compute_hash(obj)
        if stored != actual:
            diffs.append(f"hash is {str(stored)[:16]}..., content hashes to {actual[:16]}...")
        if obj.get("prev") != prev:
            diffs.append(f"prev is {str(obj.get('prev'))[:16]}..., previous hash is {prev[:16]}...")
        if oseq != seq:
            diffs.append(f"seq is {obj.get('seq')!r}, expected {seq}")
        if run_id is not None and obj.get("run_id") != run_id:
            diffs.append(f"run_id is {obj.get('run_id')!r}, expected {run_id!r}")
        if diffs:
            kind = "hash" if stored != actual else ("prev" if obj.get("prev") != prev else "seq")
            if kind == "seq" and run_id is not None and obj.get("run_id") != run_id and oseq == seq:
                kind = "run_id"
            walk.problems.append(
                ChainProblem(line=lineno, seq=oseq, event=name, kind=kind, message="; ".join(diffs))
            )
        prev = stored if isinstance(stored, str) else actual
        seq = (oseq if oseq is not None else seq) + 1
    if pending_torn is not None:  # pragma: no cover - the last line is handled as torn
        walk.problems.append(ChainProblem(line=pending_torn, kind="unparseable", message="torn"))
    walk.last_hash = prev
    walk.next_seq = seq
    return walk


class EpisodeTally:
    """Folds events into per-episode :class:`EpisodeRecord` summaries.

    The Recorder uses it to keep run.json in step with the events it writes;
    verify uses it to rebuild what run.json should say from the events alone.
    """

    def __init__(self) -> None:
        self.episodes: dict[str, EpisodeRecord] = {}
        self._model_calls: dict[str, int] = {}
        self._start_ts: dict[str, str] = {}

    def apply(self, ev: Mapping[str, Any]) -> EpisodeRecord | None:
        """Fold one event in; returns the episode summary it changed (or None)."""
        eid = ev.get("episode_id")
        name = ev.get("event")
        if not isinstance(eid, str):
            return None
        if name == EPISODE_START:
            seed = ev.get("seed")
            epoch = ev.get("epoch")
            rec = EpisodeRecord(
                episode_id=eid,
                task_id=str(ev.get("task_id", "")),
                agent=str(ev.get("agent", "")),
                epoch=epoch if isinstance(epoch, int) else 0,
                seed=seed if isinstance(seed, int) else None,
                started=str(ev.get("ts")) if ev.get("ts") else None,
            )
            self.episodes[eid] = rec
            return rec
        rec_or_none = self.episodes.get(eid)
        if rec_or_none is None:
            return None
        rec = rec_or_none
        if name == MILESTONE:
            rec.milestones.append(
                MilestoneHit(
                    id=str(ev.get("id")),
                    step=ev["step"] if isinstance(ev.get("step"), int) else None,
                    t=_num(ev["t"]) if isinstance(ev.get("t"), int | float) else None,
                )
            )
        elif name == POLICY_DECISION:
            action = str(ev.get("action"))
            rec.decisions[action] = rec.decisions.get(action, 0) + 1
            if action == "halt" and rec.halt is None:
                rule, evidence = _halting_rule(ev)
                step = ev.get("step")
                rec.halt = Halt(
                    step=step if isinstance(step, int) else None, rule=rule, evidence=evidence
                )
        elif name == MODEL_CALL:
            self._model_calls[eid] = self._model_calls.get(eid, 0) + 1
            usage = ev.get("usage")
            if isinstance(usage, dict):
                rec.tokens.input += _int(
                    usage.get("input_tokens", usage.get("prompt_tokens", usage.get("input")))
                )
                rec.tokens.output += _int(
                    usage.get("output_tokens", usage.get("completion_tokens", usage.get("output")))
                )
        elif name == LIMIT:
            rec.limit_hit = str(ev.get("which"))
        elif name == ERROR:
            rec.error = str(ev.get("message"))
        elif name == EPISODE_END:
            reason = ev.get("reason")
            rec.status = (
                reason
                if reason in ("submitted", "completed", "limit", "halted", "error")
                else "error"
            )
            rec.progress = _num(ev.get("progress"))
            depth = ev.get("depth")
            rec.depth = depth if isinstance(depth, str) else None
            steps = ev.get("steps")
            rec.steps = steps if isinstance(steps, int) and steps else self._model_calls.get(eid, 0)
            if isinstance(ev.get("limit_hit"), str):
                rec.limit_hit = ev["limit_hit"]
            if isinstance(ev.get("error"), str):
                rec.error = ev["error"]
            duration = ev.get("duration")
            rec.duration = (
                float(duration) if isinstance(duration, int | float) else _span(rec.started, ev)
            )
            rec.ended = str(ev.get("ts")) if ev.get("ts") else None
        else:
            return None
        return rec


def _halting_rule(ev: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(rule id, evidence) of a halt decision: the first rule whose action is halt."""
    rules = ev.get("rules")
    evidence = ev.get("evidence")
    if not isinstance(rules, list) or not rules:
        return None, evidence if evidence is not None else ev.get("reason")
    dicts = [r for r in rules if isinstance(r, dict)]
    if not dicts:
        return str(rules[0]), evidence
    top = next((r for r in dicts if r.get("action") == "halt"), dicts[0])
    rule = top.get("rule") or top.get("id")
    if evidence is None:
        evidence = top.get("evidence") or ev.get("reason")
    return (str(rule) if rule is not None else None), evidence


def _span(started: str | None, ev: Mapping[str, Any]) -> float | None:
    ts = ev.get("ts")
    if not started or not isinstance(ts, str):
        return None
    try:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((b - a).total_seconds(), 6)


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def load_blob(run_dir: Path, digest: str) -> bytes:
    """The bytes of ``blobs/<digest>`` of a run. Raises :class:`RecordError` if missing."""
    try:
        return (Path(run_dir) / "blobs" / digest).read_bytes()
    except OSError as exc:
        raise RecordError(f"{run_dir}: blob {digest[:16]}... missing: {exc.strerror}") from exc


def resolve_blobs(run_dir: Path, value: Any) -> Any:
    """A copy of ``value`` with every blob reference replaced by the blob's text
    (UTF-8, undecodable bytes replaced). For show/replay readers."""
    if is_blob_ref(value):
        return load_blob(run_dir, value["blob"]).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: resolve_blobs(run_dir, v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_blobs(run_dir, v) for v in value]
    return value

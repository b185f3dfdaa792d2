"""The hash chain of ``events.jsonl``: the canonical form, reading it back, and blobs.

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
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, Field

from hazmat.errors import RecordError
from hazmat.record.events import (
    GENESIS_HASH,
    LITERAL_KEY,
    NOTE,
    is_blob_ref,
    is_literal,
)

__all__ = [
    "EVENTS_FILE",
    "ChainProblem",
    "ChainWalk",
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


def load_blob(run_dir: Path, digest: str) -> bytes:
    """The bytes of ``blobs/<digest>`` of a run. Raises :class:`RecordError` if missing."""
    try:
        return (Path(run_dir) / "blobs" / digest).read_bytes()
    except OSError as exc:
        raise RecordError(f"{run_dir}: blob {digest[:16]}... missing: {exc.strerror}") from exc


def resolve_blobs(run_dir: Path, value: Any, *, missing: list[str] | None = None) -> Any:
    """A copy of ``value`` with every blob reference replaced by the blob's text
    (UTF-8, undecodable bytes replaced) and every ``{"$literal": ...}`` wrapper
    unwrapped (see :mod:`hazmat.record.events`). For show/replay/report readers.

    Raises :class:`RecordError` when a blob is missing, unless ``missing`` is a
    list: then the digest is appended to it and a marker text stands in.
    """
    if is_literal(value):
        return {
            k: resolve_blobs(run_dir, v, missing=missing) for k, v in value[LITERAL_KEY].items()
        }
    if is_blob_ref(value):
        try:
            return load_blob(run_dir, value["blob"]).decode("utf-8", "replace")
        except RecordError:
            if missing is None:
                raise
            missing.append(value["blob"])
            return f"[blob {value['blob'][:16]}... is missing from the record]"
    if isinstance(value, dict):
        return {k: resolve_blobs(run_dir, v, missing=missing) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_blobs(run_dir, v, missing=missing) for v in value]
    return value

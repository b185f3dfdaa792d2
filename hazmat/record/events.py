"""Record event names, envelope keys, and the typed payloads of the known events.

An event is a plain ``dict``. Every line of ``events.jsonl`` carries the
envelope keys ``seq, ts, run_id, episode_id, event, prev, hash`` plus the
event's own fields. The known events below have pydantic payload models that
:meth:`hazmat.record.log.Recorder.emit` checks their fields against (extra
fields are allowed, so the record stays extensible); any other event name is
accepted as is (use :data:`NOTE` for anything that has no name of its own).

Hash rule (a contract, verified independently by other tools)::

    hash = sha256(json.dumps(event_without_hash, sort_keys=True,
                             separators=(",", ":"), ensure_ascii=False)
                  .encode("utf-8")).hexdigest()
    prev = hash of the previous line (64 zeros for the first event of a run)
    seq  = 0, 1, 2, ... per run

Large outputs never get truncated: a string field over :data:`INLINE_LIMIT`
bytes, or any ``bytes`` value, is stored under ``blobs/<sha256>`` and the event
holds a blob reference ``{"blob": "<sha256>", "size": <bytes>}``.

A dict in the recorded data that merely *looks* like a blob reference (an agent
can put ``{"blob": ..., "size": ...}`` in its tool arguments) is written wrapped
as ``{"$literal": {...}}``, as is a dict that is itself such a wrapper; readers
unwrap it and never take the wrapped dict for a reference
(:func:`is_blob_ref`, :func:`iter_blob_refs`,
:func:`hazmat.record.chain.resolve_blobs`).
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hazmat.errors import RecordError

__all__ = [
    "BLOB_DIGEST_RE",
    "ENVELOPE_KEYS",
    "EPISODE_END",
    "EPISODE_START",
    "ERROR",
    "EVENT_MODELS",
    "GENESIS_HASH",
    "INLINE_LIMIT",
    "LIMIT",
    "LITERAL_KEY",
    "MILESTONE",
    "MODEL_CALL",
    "NOTE",
    "POLICY_DECISION",
    "RUN_END",
    "RUN_START",
    "SANDBOX_READY",
    "SNAPSHOT_FILES",
    "TOOL_CALL",
    "TOOL_RESULT",
    "BlobRef",
    "EndReason",
    "EpisodeEnd",
    "EpisodeStart",
    "ErrorEvent",
    "LimitEvent",
    "MilestoneEvent",
    "ModelCall",
    "Note",
    "PolicyDecisionEvent",
    "RunEnd",
    "RunStart",
    "SandboxReady",
    "ToolCallEvent",
    "ToolResult",
    "blob_ref",
    "is_blob_ref",
    "is_literal",
    "iter_blob_refs",
    "needs_literal",
    "validate_fields",
]

RUN_START: Final = "run_start"
RUN_END: Final = "run_end"
EPISODE_START: Final = "episode_start"
EPISODE_END: Final = "episode_end"
SANDBOX_READY: Final = "sandbox_ready"
MODEL_CALL: Final = "model_call"
TOOL_CALL: Final = "tool_call"
POLICY_DECISION: Final = "policy_decision"
TOOL_RESULT: Final = "tool_result"
MILESTONE: Final = "milestone"
LIMIT: Final = "limit"
ERROR: Final = "error"
NOTE: Final = "note"
SNAPSHOT_FILES: Final = "snapshot_files"
"""``note`` kind listing a halt snapshot's files and their sha256 (checked by verify)."""

ENVELOPE_KEYS: Final[tuple[str, ...]] = (
    "seq",
    "ts",
    "run_id",
    "episode_id",
    "event",
    "prev",
    "hash",
)
"""Keys every event line carries; emit() refuses fields with these names."""

GENESIS_HASH: Final = "0" * 64
"""``prev`` of the first event of a run."""

INLINE_LIMIT: Final = 4096
"""Strings up to this many UTF-8 bytes stay inline; longer ones become blobs."""

BLOB_DIGEST_RE: Final = re.compile(r"^[0-9a-f]{64}$")

LITERAL_KEY: Final = "$literal"
"""``{"$literal": {...}}`` wraps a recorded dict that must not be read as a blob reference."""

EndReason = Literal["submitted", "completed", "limit", "halted", "error"]


class BlobRef(BaseModel):
    """A reference to ``blobs/<blob>`` (sha256 hex of the stored bytes)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    blob: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


def blob_ref(digest: str, size: int) -> dict[str, Any]:
    """The JSON form of a blob reference: ``{"blob": digest, "size": size}``."""
    return {"blob": digest, "size": size}


def is_blob_ref(value: object) -> bool:
    """True when ``value`` is a blob reference dict (``blob`` digest + int ``size``)."""
    return (
        isinstance(value, dict)
        and len(value) == 2
        and isinstance(value.get("blob"), str)
        and isinstance(value.get("size"), int)
        and BLOB_DIGEST_RE.match(value["blob"]) is not None
    )


def is_literal(value: object) -> bool:
    """True when ``value`` is a ``{"$literal": {...}}`` wrapper (its dict is data, not a ref)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(LITERAL_KEY), dict)


def needs_literal(value: dict[str, Any]) -> bool:
    """True when the recorder must wrap ``value``: it looks like a ref or like a wrapper."""
    return is_blob_ref(value) or is_literal(value)


def iter_blob_refs(value: object) -> list[dict[str, Any]]:
    """Every blob reference found anywhere inside ``value`` (nested dicts/lists).

    The dict inside a ``{"$literal": ...}`` wrapper is data: its values are searched,
    the dict itself is never taken for a reference.
    """
    found: list[dict[str, Any]] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if is_literal(item):
                stack.extend(item[LITERAL_KEY].values())
            elif is_blob_ref(item):
                found.append(item)
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class _Fields(BaseModel):
    # Built when the Recorder first checks an event of the kind: readers (verify, runs,
    # show) need the names above, never these schemas, and building them all costs more
    # than reading a small run.
    model_config = ConfigDict(extra="allow", defer_build=True)


Inline = str | BlobRef | None


class RunStart(_Fields):
    """``run_start``: the run's configuration (command line, backend, agents, seed, version)."""

    config: dict[str, Any] = Field(default_factory=dict)


class RunEnd(_Fields):
    """``run_end``: final status and episode count."""

    status: Literal["complete", "interrupted"] = "complete"
    episodes: int = 0


class EpisodeStart(_Fields):
    """``episode_start``: which task, agent, epoch and seed."""

    task_id: str
    agent: str
    epoch: int = 0
    seed: int | None = None


class EpisodeEnd(_Fields):
    """``episode_end``: why it ended and how far it got."""

    reason: EndReason
    progress: float = 0.0
    depth: str | None = None
    """Id of the furthest milestone reached (None when none)."""
    steps: int = 0


class SandboxReady(_Fields):
    """``sandbox_ready``: backend, image id/digest and the spec it was made from."""

    backend: str
    image_id: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class ModelCall(_Fields):
    """``model_call``: messages sent (as blob refs), response, usage, latency (seconds)."""

    messages: list[BlobRef] = Field(default_factory=list)
    response: Any = None
    usage: dict[str, Any] = Field(default_factory=dict)
    latency: float | None = None


class ToolCallEvent(_Fields):
    """``tool_call``: a tool call the model proposed (its id as ``id`` or ``call_id``)."""

    id: str | None = None
    call_id: str | None = None
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_id(self) -> ToolCallEvent:
        if self.id is None and self.call_id is None:
            raise ValueError("a tool call needs `id` or `call_id`")
        return self


class PolicyDecisionEvent(_Fields):
    """``policy_decision``: what the policy decided, at which stage, and why."""

    stage: Literal["before", "after"]
    action: Literal["allow", "log", "ask", "block", "halt"]
    call_id: str | None = None
    rules: list[Any] = Field(default_factory=list)
    evidence: Any = None


class ToolResult(_Fields):
    """``tool_result``: outputs inline when short, else blob refs; never truncated."""

    id: str | None = None
    call_id: str | None = None
    exit_code: int | None = None
    duration: float | None = None
    timed_out: bool = False
    truncated: bool = False
    """Whether the *model's* view was truncated; the record never is."""
    stdout: Inline = None
    stderr: Inline = None


class MilestoneEvent(_Fields):
    """``milestone``: a milestone reached at a step, ``t`` seconds into the episode."""

    id: str
    step: int | None = None
    """None for a milestone found only by the final checks."""
    t: float | None = None


class LimitEvent(_Fields):
    """``limit``: which limit ended the episode (steps, seconds, tokens, ...)."""

    which: str


class ErrorEvent(_Fields):
    """``error``: a harness fault (never blamed on the agent)."""

    kind: str
    message: str


class Note(_Fields):
    """``note``: anything else worth keeping, e.g. a resume after a torn line."""

    kind: str = "note"
    message: str = ""


EVENT_MODELS: Final[dict[str, type[BaseModel]]] = {
    RUN_START: RunStart,
    RUN_END: RunEnd,
    EPISODE_START: EpisodeStart,
    EPISODE_END: EpisodeEnd,
    SANDBOX_READY: SandboxReady,
    MODEL_CALL: ModelCall,
    TOOL_CALL: ToolCallEvent,
    POLICY_DECISION: PolicyDecisionEvent,
    TOOL_RESULT: ToolResult,
    MILESTONE: MilestoneEvent,
    LIMIT: LimitEvent,
    ERROR: ErrorEvent,
    NOTE: Note,
}


def validate_fields(event: str, fields: dict[str, Any]) -> None:
    """Check ``fields`` against the payload model of a known ``event``.

    Unknown event names pass unchecked. Raises :class:`hazmat.errors.RecordError`
    naming the event and the bad field (``event 'x': field: message``) when a
    known event's fields do not fit.
    """
    model = EVENT_MODELS.get(event)
    if model is None:
        return
    try:
        model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(fields)"
        raise RecordError(f"event {event!r}: {loc}: {first['msg']}") from exc

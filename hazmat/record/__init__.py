"""The record: an append-only, hash-chained event log, blobs and run.json per run.

Public API (see the modules for details)::

    Recorder.create(out_dir, *, run_id=None, config=None, ...) -> Recorder
    Recorder.open(run_dir) -> Recorder           # resume
    recorder.emit(event, *, episode_id=None, **fields) -> dict
    recorder.bind(episode_id) -> EpisodeRecorder  # .emit/.start/.end/.blob_ref/.log
    recorder.finish(status="complete")           # also seals the run (seal log)

    derive_run_record(events) -> RunRecord       # what run.json must say (summary)
    load_run_record(run_dir) -> RunRecord        # derived from a run's events alone
    SealLog().append(...) / check_run_seals(...)  # the seal log outside the run (seals)
"""

from __future__ import annotations

from hazmat.record.chain import (
    EVENTS_FILE,
    ChainProblem,
    ChainWalk,
    canonical_bytes,
    compute_hash,
    load_blob,
    resolve_blobs,
    walk_chain,
)
from hazmat.record.events import (
    ENVELOPE_KEYS,
    EPISODE_END,
    EPISODE_START,
    ERROR,
    EVENT_MODELS,
    GENESIS_HASH,
    INLINE_LIMIT,
    LIMIT,
    MILESTONE,
    MODEL_CALL,
    NOTE,
    POLICY_DECISION,
    RUN_END,
    RUN_START,
    SANDBOX_READY,
    TOOL_CALL,
    TOOL_RESULT,
    BlobRef,
    is_blob_ref,
    iter_blob_refs,
)
from hazmat.record.log import EpisodeRecorder, Recorder, configure_logging, get_logger
from hazmat.record.redact import Redactor, redact_processor, secrets_from_env
from hazmat.record.seals import (
    SealCheck,
    SealEntry,
    SealLog,
    check_run_seals,
    init_key,
    load_signing_key,
    seal_log_path,
    trusted_public_key,
)
from hazmat.record.store import (
    EpisodeRecord,
    RunListing,
    RunRecord,
    RunStore,
    list_runs,
    new_run_id,
    writer_alive,
)
from hazmat.record.summary import (
    EpisodeTally,
    RunSummary,
    derive_run_record,
    diff_records,
    load_run_record,
)

__all__ = [
    "ENVELOPE_KEYS",
    "EPISODE_END",
    "EPISODE_START",
    "ERROR",
    "EVENTS_FILE",
    "EVENT_MODELS",
    "GENESIS_HASH",
    "INLINE_LIMIT",
    "LIMIT",
    "MILESTONE",
    "MODEL_CALL",
    "NOTE",
    "POLICY_DECISION",
    "RUN_END",
    "RUN_START",
    "SANDBOX_READY",
    "TOOL_CALL",
    "TOOL_RESULT",
    "BlobRef",
    "ChainProblem",
    "ChainWalk",
    "EpisodeRecord",
    "EpisodeRecorder",
    "EpisodeTally",
    "Recorder",
    "Redactor",
    "RunListing",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "SealCheck",
    "SealEntry",
    "SealLog",
    "canonical_bytes",
    "check_run_seals",
    "compute_hash",
    "configure_logging",
    "derive_run_record",
    "diff_records",
    "get_logger",
    "init_key",
    "is_blob_ref",
    "iter_blob_refs",
    "list_runs",
    "load_blob",
    "load_run_record",
    "load_signing_key",
    "new_run_id",
    "redact_processor",
    "resolve_blobs",
    "seal_log_path",
    "secrets_from_env",
    "trusted_public_key",
    "walk_chain",
    "writer_alive",
]

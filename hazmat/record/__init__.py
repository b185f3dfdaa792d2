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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from hazmat.record.log import EpisodeRecorder, Recorder
    from hazmat.record.logconfig import configure_logging, get_logger
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

_WHERE: dict[str, str] = {
    "BlobRef": "hazmat.record.events",
    "ChainProblem": "hazmat.record.chain",
    "ChainWalk": "hazmat.record.chain",
    "ENVELOPE_KEYS": "hazmat.record.events",
    "EPISODE_END": "hazmat.record.events",
    "EPISODE_START": "hazmat.record.events",
    "ERROR": "hazmat.record.events",
    "EVENTS_FILE": "hazmat.record.chain",
    "EVENT_MODELS": "hazmat.record.events",
    "EpisodeRecord": "hazmat.record.store",
    "EpisodeRecorder": "hazmat.record.log",
    "EpisodeTally": "hazmat.record.summary",
    "GENESIS_HASH": "hazmat.record.events",
    "INLINE_LIMIT": "hazmat.record.events",
    "LIMIT": "hazmat.record.events",
    "MILESTONE": "hazmat.record.events",
    "MODEL_CALL": "hazmat.record.events",
    "NOTE": "hazmat.record.events",
    "POLICY_DECISION": "hazmat.record.events",
    "RUN_END": "hazmat.record.events",
    "RUN_START": "hazmat.record.events",
    "Recorder": "hazmat.record.log",
    "Redactor": "hazmat.record.redact",
    "RunListing": "hazmat.record.store",
    "RunRecord": "hazmat.record.store",
    "RunStore": "hazmat.record.store",
    "RunSummary": "hazmat.record.summary",
    "SANDBOX_READY": "hazmat.record.events",
    "SealCheck": "hazmat.record.seals",
    "SealEntry": "hazmat.record.seals",
    "SealLog": "hazmat.record.seals",
    "TOOL_CALL": "hazmat.record.events",
    "TOOL_RESULT": "hazmat.record.events",
    "canonical_bytes": "hazmat.record.chain",
    "check_run_seals": "hazmat.record.seals",
    "compute_hash": "hazmat.record.chain",
    "configure_logging": "hazmat.record.logconfig",
    "derive_run_record": "hazmat.record.summary",
    "diff_records": "hazmat.record.summary",
    "get_logger": "hazmat.record.logconfig",
    "init_key": "hazmat.record.seals",
    "is_blob_ref": "hazmat.record.events",
    "iter_blob_refs": "hazmat.record.events",
    "list_runs": "hazmat.record.store",
    "load_blob": "hazmat.record.chain",
    "load_run_record": "hazmat.record.summary",
    "load_signing_key": "hazmat.record.seals",
    "new_run_id": "hazmat.record.store",
    "redact_processor": "hazmat.record.redact",
    "resolve_blobs": "hazmat.record.chain",
    "seal_log_path": "hazmat.record.seals",
    "secrets_from_env": "hazmat.record.redact",
    "trusted_public_key": "hazmat.record.seals",
    "walk_chain": "hazmat.record.chain",
    "writer_alive": "hazmat.record.store",
}
"""Where each public name lives: imported on first use, so importing one record module
(e.g. ``hazmat.record.redact``) does not import them all (the CLI starts faster)."""


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

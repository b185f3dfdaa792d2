"""structlog setup and the :class:`Recorder` that writes a run's hash-chained event log.

Logging for people: :func:`configure_logging` sets structlog up once per process
(stderr, quiet by default: ``warning``); :func:`get_logger` gives a logger bound
to ``run_id`` / ``episode_id``. Every log line passes the redaction processor.

The record: a :class:`Recorder` per run appends each event as one JSON line to
``runs/<run_id>/events.jsonl`` and fsyncs it before :meth:`Recorder.emit`
returns, so ``kill -9`` loses at most the line being written. ``emit`` runs
the event's fields through tiny structlog-style processors
(``(recorder, event_name, fields) -> fields``: JSON conversion, redaction,
blob offloading), then chains (``seq``, ``prev``, ``hash``: the rule in
:mod:`hazmat.record.events`) and writes under a lock, so threads and asyncio
tasks may emit concurrently. It also logs a line for people through structlog.

``run.json`` is derived from the events (:mod:`hazmat.record.summary`): the
Recorder folds every event into a :class:`~hazmat.record.summary.RunSummary` and
rewrites run.json from it after each save point (``run_start``, ``episode_start``,
``episode_end``, ``run_end``, the ``resumed`` note), so ``hazmat verify`` can check
every field of it against the events.

The seal log (:mod:`hazmat.record.seals`): a Recorder writes an ``open`` entry when it
creates or reopens a run and a ``seal`` entry when it finishes one (signed when a
signing key is configured), so every finished run is sealed outside its directory.
A seal log that cannot be written never costs the record: the Recorder logs a
warning (and, for the ``open`` entry, records a ``note`` of kind ``seal_log``).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import threading
from types import TracebackType
from typing import Any, Final

from hazmat.errors import HazmatError, RecordError
from hazmat.record.chain import (
    EVENTS_FILE,
    TORN_NOTE_KIND,
    canonical_bytes,
    walk_chain,
)
from hazmat.record.events import (
    ENVELOPE_KEYS,
    EPISODE_END,
    EPISODE_START,
    ERROR,
    LIMIT,
    MILESTONE,
    NOTE,
    POLICY_DECISION,
    RUN_END,
    RUN_START,
    blob_ref,
)
from hazmat.record.logconfig import configure_logging, get_logger
from hazmat.record.processors import DEFAULT_PROCESSORS, Processor, to_jsonable
from hazmat.record.redact import Redactor
from hazmat.record.seals import SealEntry, SealLog
from hazmat.record.store import RunStatus, RunStore, utc_now
from hazmat.record.summary import RESUMED_KIND, EpisodeTally, RunSummary

__all__ = ["EpisodeRecorder", "Recorder", "configure_logging"]

_EVENT_LEVEL: Final = {
    RUN_START: logging.INFO,
    RUN_END: logging.INFO,
    EPISODE_START: logging.INFO,
    EPISODE_END: logging.INFO,
    MILESTONE: logging.INFO,
    LIMIT: logging.WARNING,
    ERROR: logging.ERROR,
}


class Recorder:
    """Writes one run's record: ``events.jsonl`` (hash-chained), ``blobs/``, ``run.json``.

    Make one with :meth:`create` (new run; emits ``run_start``) or :meth:`open`
    (resume an existing run; emits a ``note``). One writer per run: the events
    file is locked (``flock``) while a Recorder has it open. Thread-safe.

    ``secrets`` ({name: value}) are redacted in addition to the API keys found
    in the environment when the Recorder is made. ``fsync=False`` skips the
    per-event fsync (benchmarks only: the record is then not crash-safe).
    ``strict=True`` makes :meth:`emit` raise when a known event's fields do not
    fit its payload model; by default the event is written anyway with a
    ``schema_error`` field (a record never loses an event over its shape).
    ``seal_log`` is where ``open``/``seal`` entries go (default: :class:`SealLog`
    at ``$HAZMAT_SEAL_LOG`` or the user's data directory); ``False`` writes none.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        secrets: dict[str, str] | None = None,
        fsync: bool = True,
        strict: bool = False,
        processors: tuple[Processor, ...] = DEFAULT_PROCESSORS,
        seal_log: SealLog | bool = True,
    ) -> None:
        self.store = store
        self.strict = strict
        self.run_id = store.run_id
        self.path = store.path
        self.events_path = self.path / EVENTS_FILE
        self.blobs_path = self.path / "blobs"
        self.redactor = Redactor(secrets)
        self.processors = processors
        self.fsync = fsync
        self.summary = RunSummary(self.run_id)
        self.seal_log: SealLog | None = (
            seal_log if isinstance(seal_log, SealLog) else SealLog() if seal_log else None
        )
        self.seal: SealEntry | None = None
        """The seal entry :meth:`finish` wrote (None before, or when it could not)."""
        self._first_hash: str | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.log = get_logger(run_id=self.run_id)
        try:
            self.blobs_path.mkdir(exist_ok=True)
            self._fd = os.open(self.events_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RecordError(f"{self.events_path}: cannot open: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            raise RecordError(
                f"{self.events_path}: another recorder is writing this run",
                hint="one process at a time may write a run",
            ) from exc
        walk = walk_chain(self.events_path, run_id=self.run_id)
        if walk.problems:
            os.close(self._fd)
            p = walk.problems[0]
            raise RecordError(
                f"{self.events_path}:{p.line}: the record does not verify ({p.message}); "
                "refusing to append",
                hint="run `hazmat verify` on it",
            )
        for ev in walk.events:
            self.summary.apply(ev)
        if walk.events and isinstance(walk.events[0].get("hash"), str):
            self._first_hash = walk.events[0]["hash"]
        self._seq = walk.next_seq
        self._prev = walk.last_hash
        self.resumed = bool(walk.events) or walk.torn_line is not None
        self.torn_line = walk.torn_line
        if not walk.ends_with_newline:
            self._write(b"\n")
        if walk.torn_line is not None:
            self.emit(
                NOTE,
                kind=TORN_NOTE_KIND,
                line=walk.torn_line,
                bytes=walk.torn_bytes,
                message=f"line {walk.torn_line} was torn (writer killed mid-line); skipped",
            )

    # -- construction -----------------------------------------------------

    @classmethod
    def create(
        cls,
        out_dir: str | os.PathLike[str],
        *,
        run_id: str | None = None,
        config: dict[str, Any] | None = None,
        tasks: list[str] | None = None,
        agents: list[str] | None = None,
        parent_run: str | None = None,
        secrets: dict[str, str] | None = None,
        fsync: bool = True,
        strict: bool = False,
        seal_log: SealLog | bool = True,
    ) -> Recorder:
        """Make ``<out_dir>/<run_id>/`` with run.json, and emit ``run_start`` (seq 0).

        Writes an ``open`` entry to the seal log.

        Raises :class:`RecordError` when the directory exists or cannot be written.
        """
        redactor = Redactor(secrets)
        store = RunStore.create(
            out_dir,
            run_id,
            config=redactor.value(to_jsonable(config or {})),
            tasks=tasks,
            agents=agents,
            parent_run=parent_run,
        )
        rec = cls(store, secrets=secrets, fsync=fsync, strict=strict, seal_log=seal_log)
        rec.emit(
            RUN_START,
            config=config or {},
            tasks=list(tasks or []),
            agents=list(agents or []),
            parent_run=parent_run,
        )
        rec._log_open()
        return rec

    @classmethod
    def open(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        secrets: dict[str, str] | None = None,
        fsync: bool = True,
        strict: bool = False,
        seal_log: SealLog | bool = True,
    ) -> Recorder:
        """Reopen an existing run to append to it (resume).

        Continues ``seq``/``prev`` from the last valid line. A torn last line
        (writer killed mid-line) is left in place, ended with a newline, and a
        ``note`` (``kind="torn_line"``) says so; then a ``note``
        (``kind="resumed"``) is emitted (the run status is ``running`` again) and
        the seal log gets an ``open`` entry at that note.
        Raises :class:`RecordError` when run.json is unreadable, the chain does
        not verify, or another Recorder holds the run.
        """
        store = RunStore.open(run_dir)
        rec = cls(store, secrets=secrets, fsync=fsync, strict=strict, seal_log=seal_log)
        rec.emit(
            NOTE,
            kind=RESUMED_KIND,
            message=f"run reopened for writing at seq {rec._seq}",
            previous_status=rec.summary.status,
        )
        rec._log_open()
        return rec

    # -- writing ----------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            if self.fsync:
                # fdatasync: the data and the file size reach the disk; the mtime may lag
                os.fdatasync(self._fd)
        except OSError as exc:
            raise RecordError(f"{self.events_path}: write failed: {exc.strerror or exc}") from exc

    def _store_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blobs_path / digest
        if path.exists():
            return digest
        tmp = self.blobs_path / f".tmp-{digest[:16]}-{os.getpid()}-{threading.get_ident()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if self.fsync:
                dfd = os.open(self.blobs_path, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise RecordError(f"{path}: cannot write blob: {exc.strerror or exc}") from exc
        return digest

    def blob(self, data: bytes | str) -> str:
        """Store ``data`` (redacted first) under ``blobs/<sha256>``; return the digest.

        Content-addressed and written atomically (temp file, fsync, rename).
        Raises :class:`RecordError` when it cannot be written.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return self._store_blob(self.redactor.bytes(raw))

    def blob_ref(self, data: bytes | str) -> dict[str, Any]:
        """Store ``data`` like :meth:`blob`; return ``{"blob": digest, "size": n}``."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        clean = self.redactor.bytes(raw)
        return blob_ref(self._store_blob(clean), len(clean))

    def blob_json(self, value: Any) -> dict[str, Any]:
        """Store ``value`` as canonical JSON (redacted) and return its blob reference.

        For ``model_call`` messages: ``messages=[rec.blob_json(m) for m in msgs]``.
        """
        clean = self.redactor.value(to_jsonable(value))
        data = json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return blob_ref(self._store_blob(data), len(data))

    def emit(self, event: str, *, episode_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Append one event and fsync it; return the event as written (with ``hash``).

        ``fields`` may hold any JSON-able data, pydantic models and ``bytes``;
        they are redacted, strings over 4096 UTF-8 bytes and all non-text bytes
        go to ``blobs/`` as ``{"blob", "size"}`` references. Known events are
        checked against their payload model (:data:`hazmat.record.events.EVENT_MODELS`):
        a misfit is written with a ``schema_error`` field (raises when ``strict``).
        Raises :class:`RecordError` on a reserved field name, a closed recorder,
        a failed write, or (``strict``) fields that do not fit a known event.
        """
        clash = [k for k in fields if k in ENVELOPE_KEYS]
        if clash:
            raise RecordError(f"event {event!r}: reserved field name(s) {', '.join(clash)}")
        data: dict[str, Any] = fields
        for proc in self.processors:
            data = proc(self, event, data)
        with self._lock:
            if self._closed:
                raise RecordError(f"run {self.run_id}: recorder is closed; cannot emit {event!r}")
            data["seq"] = self._seq
            data["ts"] = utc_now()
            data["run_id"] = self.run_id
            data["episode_id"] = episode_id
            data["event"] = event
            data["prev"] = self._prev
            body = canonical_bytes(data)
            digest = hashlib.sha256(body).hexdigest()
            self._write(body[:-1] + b',"hash":"' + digest.encode() + b'"}\n')
            data["hash"] = digest
            self._seq += 1
            self._prev = digest
            if self._first_hash is None:
                self._first_hash = digest
            if self.summary.apply(data):
                self.store.write(self.summary.dump())
        self._log_line(event, data)
        return data

    async def aemit(
        self, event: str, *, episode_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """:meth:`emit` in a worker thread, so the event loop is not blocked by fsync."""
        return await asyncio.to_thread(self.emit, event, episode_id=episode_id, **fields)

    def _log_line(self, event: str, data: dict[str, Any]) -> None:
        level = _EVENT_LEVEL.get(event, logging.DEBUG)
        if event == POLICY_DECISION and data.get("action") in ("block", "halt"):
            level = logging.WARNING
        enabled = getattr(self.log, "is_enabled_for", None)
        if enabled is None or enabled(level):
            brief = {  # long values are cut, never what went wrong (message, error)
                k: (
                    v
                    if not isinstance(v, str) or len(v) <= 120 or k in ("message", "error")
                    else v[:119] + "…"
                )
                for k, v in data.items()
                if k not in ("run_id", "prev", "hash", "ts", "event")
                and (v is None or isinstance(v, str | int | float | bool))
            }
            self.log.log(level, event, **brief)

    @property
    def seq(self) -> int:
        """The seq the next event will get."""
        return self._seq

    @property
    def last_hash(self) -> str:
        """The hash of the last event written (64 zeros before the first)."""
        return self._prev

    def bind(self, episode_id: str) -> EpisodeRecorder:
        """A handle that emits with ``episode_id`` set and logs with it bound."""
        return EpisodeRecorder(self, episode_id)

    # -- ending -----------------------------------------------------------

    @property
    def tally(self) -> EpisodeTally:
        """The per-episode summaries folded so far."""
        return self.summary.tally

    def _log_open(self) -> None:
        """Write the seal log's ``open`` entry at the current last event."""
        if self.seal_log is None or self._first_hash is None:
            return
        try:
            self.seal_log.append(
                "open",
                run_id=self.run_id,
                first=self._first_hash,
                seq=self._seq - 1,
                hash=self._prev,
                run_dir=str(self.path.resolve()),
            )
        except HazmatError as exc:
            self.log.warning("seal_log_unavailable", error=exc.one_line())
            self.emit(
                NOTE,
                kind="seal_log",
                message=f"the seal log could not be written: {exc.one_line()}; this run "
                "will not be sealed outside its directory",
            )

    def _seal(self, status: str) -> None:
        """Write the seal log's ``seal`` entry at ``run_end`` and copy it to run.json."""
        if self.seal_log is None or self._first_hash is None:
            return
        try:
            self.seal = self.seal_log.append(
                "seal",
                run_id=self.run_id,
                first=self._first_hash,
                seq=self._seq - 1,
                hash=self._prev,
                ended=True,
                status=status,
                run_dir=str(self.path.resolve()),
            )
        except HazmatError as exc:
            self.log.warning("seal_log_unavailable", error=exc.one_line())
            return
        data = self.summary.dump()
        data.update(sealed_hash=self.seal.hash, sealed_seq=self.seal.seq)
        self.store.write(data)

    def finish(self, status: RunStatus = "complete") -> dict[str, Any]:
        """Emit ``run_end`` (status, episode count), seal the run, close.

        The seal goes to the seal log (and its copy to run.json's ``sealed_hash`` /
        ``sealed_seq``); :attr:`seal` holds it, None when the log could not be written.
        """
        ev = self.emit(RUN_END, status=status, episodes=len(self.summary.episodes))
        with self._lock:
            self._seal(str(ev.get("status")))
        self.close()
        return ev

    def close(self) -> None:
        """Close the events file (no ``run_end``: the run stays ``running``). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._fd)

    @property
    def closed(self) -> bool:
        """True after :meth:`close` / :meth:`finish`."""
        return self._closed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Finish as ``complete`` on success, ``interrupted`` on any exception."""
        if self._closed:
            return
        self.finish("complete" if exc_type is None else "interrupted")


class EpisodeRecorder:
    """An episode-bound handle on a :class:`Recorder` (from :meth:`Recorder.bind`)."""

    def __init__(self, recorder: Recorder, episode_id: str) -> None:
        self.recorder = recorder
        self.episode_id = episode_id
        self.log = get_logger(run_id=recorder.run_id, episode_id=episode_id)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """:meth:`Recorder.emit` with this episode's id."""
        return self.recorder.emit(event, episode_id=self.episode_id, **fields)

    async def aemit(self, event: str, **fields: Any) -> dict[str, Any]:
        """:meth:`Recorder.aemit` with this episode's id."""
        return await self.recorder.aemit(event, episode_id=self.episode_id, **fields)

    def blob(self, data: bytes | str) -> str:
        """:meth:`Recorder.blob`."""
        return self.recorder.blob(data)

    def blob_ref(self, data: bytes | str) -> dict[str, Any]:
        """:meth:`Recorder.blob_ref`."""
        return self.recorder.blob_ref(data)

    def blob_json(self, value: Any) -> dict[str, Any]:
        """:meth:`Recorder.blob_json`."""
        return self.recorder.blob_json(value)

    def start(
        self, *, task_id: str, agent: str, epoch: int = 0, seed: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Emit ``episode_start`` (adds the episode to run.json)."""
        return self.emit(
            EPISODE_START, task_id=task_id, agent=agent, epoch=epoch, seed=seed, **fields
        )

    def end(
        self,
        reason: str,
        *,
        progress: float = 0.0,
        depth: str | None = None,
        steps: int = 0,
        duration: float | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Emit ``episode_end`` (writes the episode's summary to run.json)."""
        return self.emit(
            EPISODE_END,
            reason=reason,
            progress=progress,
            depth=depth,
            steps=steps,
            duration=duration,
            **fields,
        )

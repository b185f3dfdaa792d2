"""``run.json``: the run summary, written at start and rewritten as episodes end.

run.json is derived from the events (:mod:`hazmat.record.summary` says how, and
``hazmat verify`` checks it); the Recorder writes it with :meth:`RunStore.write`.
:class:`RunRecord` is the pydantic model of ``runs/<run_id>/run.json``;
:class:`RunStore` owns one run directory's ``run.json`` and rewrites it
atomically (temp file, fsync, rename, fsync of the directory) on every change,
so a run killed at any moment leaves either the old or the new summary, never a
torn one, and an interrupted run stays visible with status ``running``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazmat.errors import RecordError

__all__ = [
    "RUN_FILE",
    "EpisodeRecord",
    "Halt",
    "MilestoneHit",
    "RunListing",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "Tokens",
    "atomic_write",
    "list_runs",
    "new_run_id",
    "utc_now",
    "writer_alive",
]

RUN_FILE = "run.json"
RunStatus = Literal["running", "complete", "interrupted"]
EpisodeStatus = Literal["submitted", "completed", "limit", "halted", "error"]


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id() -> str:
    """A sortable, unique run id like ``2026-11-29T00-20-01_ab12cd``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S") + "_" + secrets.token_hex(3)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync the directory.

    Raises :class:`RecordError` when the file cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordError(f"cannot write {path}: {exc.strerror or exc}") from exc


class MilestoneHit(BaseModel):
    """A milestone reached: its id, the step, and seconds since the episode started."""

    id: str
    step: int | None = None
    t: float | None = None


class Halt(BaseModel):
    """Where and why the policy halted an episode (from its first halting decision)."""

    step: int | None = None
    stage: str | None = None
    """``before`` (the call never ran) or ``after`` (it ran, then the policy halted)."""
    rule: str | None = None
    evidence: Any = None
    reason: str | None = None


class Tokens(BaseModel):
    """Model token usage of an episode."""

    input: int = 0
    output: int = 0


class EpisodeRecord(BaseModel):
    """One episode's summary in ``run.json``. ``status`` is None while it runs."""

    model_config = ConfigDict(extra="allow")

    episode_id: str
    task_id: str
    agent: str
    epoch: int = 0
    seed: int | None = None
    status: EpisodeStatus | None = None
    limit_hit: str | None = None
    progress: float = 0.0
    depth: str | None = None
    milestones: list[MilestoneHit] = Field(default_factory=list)
    decisions: dict[str, int] = Field(default_factory=dict)
    halt: Halt | None = None
    tokens: Tokens = Field(default_factory=Tokens)
    steps: int = 0
    duration: float | None = None
    error: str | None = None
    started: str | None = None
    ended: str | None = None


class RunRecord(BaseModel):
    """``run.json``: a run's configuration, status and per-episode summaries."""

    model_config = ConfigDict(extra="allow")

    format: int = 1
    """2: derived from the events (:mod:`hazmat.record.summary`); 1 (absent): written
    before that, by a hazmat that kept its own timestamps."""
    run_id: str
    created: str
    updated: str
    status: RunStatus = "running"
    config: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] = Field(default_factory=list)
    agents: list[str] = Field(default_factory=list)
    episodes: list[EpisodeRecord] = Field(default_factory=list)
    parent_run: str | None = None
    sealed_hash: str | None = None
    sealed_seq: int | None = None

    def episode(self, episode_id: str) -> EpisodeRecord | None:
        """The episode with this id, or None."""
        for ep in self.episodes:
            if ep.episode_id == episode_id:
                return ep
        return None


def _load(path: Path) -> RunRecord:
    file = path / RUN_FILE
    try:
        raw = file.read_bytes()
    except FileNotFoundError as exc:
        raise RecordError(f"{file}: no run.json here", hint="is this a run directory?") from exc
    except OSError as exc:
        raise RecordError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    try:
        return RunRecord.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise RecordError(f"{file}: {loc}: {first['msg']}") from exc


class RunStore:
    """Owns ``<run_dir>/run.json``; every change is written atomically at once.

    Thread-safe: a lock guards the in-memory record and the write.
    """

    def __init__(self, path: Path, record: RunRecord) -> None:
        self.path = Path(path)
        self._record = record
        self._lock = threading.RLock()

    @property
    def run_id(self) -> str:
        """The run's id (the directory name)."""
        return self._record.run_id

    @property
    def record(self) -> RunRecord:
        """A deep copy of the current summary."""
        with self._lock:
            return self._record.model_copy(deep=True)

    @classmethod
    def create(
        cls,
        out_dir: str | os.PathLike[str],
        run_id: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        tasks: list[str] | None = None,
        agents: list[str] | None = None,
        parent_run: str | None = None,
    ) -> RunStore:
        """Make ``<out_dir>/<run_id>/`` (with ``blobs/``) and write its first ``run.json``.

        Raises :class:`RecordError` when the run directory already exists or
        cannot be made.
        """
        rid = run_id or new_run_id()
        path = Path(out_dir) / rid
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
            (path / "blobs").mkdir()
        except FileExistsError as exc:
            raise RecordError(f"{path}: run directory exists", hint="pick another run id") from exc
        except OSError as exc:
            raise RecordError(f"{path}: cannot create: {exc.strerror or exc}") from exc
        now = utc_now()
        record = RunRecord(
            run_id=rid,
            created=now,
            updated=now,
            config=dict(config or {}),
            tasks=list(tasks or []),
            agents=list(agents or []),
            parent_run=parent_run,
        )
        store = cls(path, record)
        store.save()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunStore:
        """Load an existing run directory. Raises :class:`RecordError` if run.json is bad."""
        p = Path(path)
        return cls(p, _load(p))

    def save(self) -> None:
        """Rewrite run.json (atomically) from the in-memory record."""
        with self._lock:
            self._record.updated = utc_now()
            data = json.dumps(
                self._record.model_dump(mode="json"), indent=2, ensure_ascii=False
            ).encode()
            atomic_write(self.path / RUN_FILE, data + b"\n")

    def write(self, data: dict[str, Any]) -> None:
        """Replace run.json with ``data`` exactly as given (JSON data of a RunRecord).

        The Recorder writes the summary derived from its events this way
        (:mod:`hazmat.record.summary`); ``updated`` is not touched. Raises
        :class:`RecordError` when ``data`` is not a run record or cannot be written.
        """
        with self._lock:
            try:
                record = RunRecord.model_validate(data)
            except ValidationError as exc:
                raise RecordError(f"{self.path / RUN_FILE}: {exc.errors()[0]['msg']}") from exc
            body = json.dumps(data, indent=2, ensure_ascii=False).encode()
            atomic_write(self.path / RUN_FILE, body + b"\n")
            self._record = record

    def update(self, **changes: Any) -> RunRecord:
        """Set top-level fields (e.g. ``config``, ``tasks``, ``sealed_hash``) and save."""
        with self._lock:
            data = self._record.model_dump()
            data.update(changes)
            self._record = RunRecord.model_validate(data)
            self.save()
            return self._record.model_copy(deep=True)

    def set_status(self, status: RunStatus) -> None:
        """Set the run status (``running``, ``complete``, ``interrupted``) and save."""
        self.update(status=status)

    def add_episode(self, episode: EpisodeRecord) -> None:
        """Add an episode summary (replacing one with the same id) and save."""
        with self._lock:
            self._record.episodes = [
                e for e in self._record.episodes if e.episode_id != episode.episode_id
            ] + [episode]
            self.save()

    def update_episode(self, episode_id: str, **changes: Any) -> EpisodeRecord:
        """Change fields of one episode summary and save; returns the new summary.

        Raises :class:`RecordError` when no episode has this id or a value does not fit.
        """
        with self._lock:
            for i, ep in enumerate(self._record.episodes):
                if ep.episode_id == episode_id:
                    data = ep.model_dump()
                    data.update(changes)
                    try:
                        new = EpisodeRecord.model_validate(data)
                    except ValidationError as exc:
                        msg = exc.errors()[0]["msg"]
                        raise RecordError(f"episode {episode_id}: {msg}") from exc
                    self._record.episodes[i] = new
                    self.save()
                    return new.model_copy(deep=True)
        raise RecordError(f"run {self.run_id}: no episode {episode_id!r}")


def writer_alive(run_dir: str | os.PathLike[str]) -> bool:
    """True when a Recorder (in any process) holds ``<run_dir>/events.jsonl`` open.

    A run.json saying ``running`` with no live writer is a run whose process died.
    """
    try:
        fd = os.open(Path(run_dir) / "events.jsonl", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


class RunListing(BaseModel):
    """One run directory found by :func:`list_runs`: its record, or why it cannot be read.

    ``live`` is True while a Recorder writes it; a ``running`` run that is not
    live was interrupted (its process died).
    """

    path: str
    record: RunRecord | None = None
    error: str | None = None
    live: bool = False


def list_runs(directory: str | os.PathLike[str]) -> list[RunListing]:
    """The run directories directly under ``directory`` (those with a run.json), oldest first.

    A run whose run.json cannot be read is listed with ``error`` set instead of
    being dropped. A missing ``directory`` gives an empty list.
    """
    base = Path(directory)
    if not base.is_dir():
        return []
    out: list[RunListing] = []
    for child in sorted(base.iterdir()):
        if not (child / RUN_FILE).is_file():
            continue
        try:
            out.append(RunListing(path=str(child), record=_load(child), live=writer_alive(child)))
        except RecordError as exc:
            out.append(RunListing(path=str(child), error=exc.message))
    return out

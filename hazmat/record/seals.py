"""The seal log: where a run's final hash is kept *outside* its run directory.

Someone who can rewrite a run directory can rewrite anything in it, a seal
included. So every seal also goes to an append-only log in the user's data
directory, ``$XDG_DATA_HOME/hazmat/seals.jsonl`` (default
``~/.local/share/hazmat/seals.jsonl``; the environment variable
``HAZMAT_SEAL_LOG`` names another file), one JSON line per entry:

``open``
    a Recorder began writing the run (``Recorder.create``) or reopened it
    (``Recorder.open``, resume) at ``seq``/``hash``; until a later ``seal``, the log
    says the run has not ended.
``seal``
    the run's last event was ``seq``/``hash`` when it was sealed (``Recorder.finish``
    seals every finished run; ``hazmat seal`` seals by hand).

Each entry names the run (``run_id`` and ``first``, the hash of its first event) and
links to the previous line (``prev``: sha256 of that line, 64 zeros first), so an
entry removed from the middle of the log shows. When a signing key exists
(``hazmat keys init`` makes one: ``<data dir>/seal.key``, private, and ``seal.pub``;
``HAZMAT_SEAL_KEY`` names another key file), each entry is signed with Ed25519
(``key``: the public key, hex; ``sig``: the signature over the entry without ``sig``,
hex). Signing needs the ``cryptography`` package; it is imported only when a key is used.

:func:`check_run_seals` compares a run's events with what the log says about the run
(:func:`hazmat.replay.verify.verify_run` calls it). Rules, in short: every entry for the
run must name a hash the chain holds at that seq; when the last entry is a seal, the
chain must end there (nothing appended, no torn tail); once an entry for the run is
signed, later ones must be signed too, by the configured key when there is one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError

from hazmat.errors import ConfigError, RecordError
from hazmat.record.chain import canonical_bytes
from hazmat.record.events import GENESIS_HASH, RUN_END
from hazmat.record.store import utc_now

__all__ = [
    "SEAL_KEY_ENV",
    "SEAL_LOG_ENV",
    "SealCheck",
    "SealEntry",
    "SealLog",
    "SealLogRead",
    "SigningKey",
    "check_run_seals",
    "data_dir",
    "init_key",
    "key_path",
    "latest_seal",
    "load_signing_key",
    "seal_log_path",
    "trusted_public_key",
]

SEAL_LOG_ENV: Final = "HAZMAT_SEAL_LOG"
SEAL_KEY_ENV: Final = "HAZMAT_SEAL_KEY"
_TAIL_BYTES: Final = 1 << 20


def data_dir() -> Path:
    """``$XDG_DATA_HOME/hazmat`` (default ``~/.local/share/hazmat``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hazmat"


def seal_log_path() -> Path:
    """The seal log: ``$HAZMAT_SEAL_LOG``, else ``<data dir>/seals.jsonl``."""
    env = os.environ.get(SEAL_LOG_ENV)
    return Path(env).expanduser() if env else data_dir() / "seals.jsonl"


def key_path() -> Path:
    """The private signing key: ``$HAZMAT_SEAL_KEY``, else ``<data dir>/seal.key``.

    Its public half is the same path with the suffix ``.pub``.
    """
    env = os.environ.get(SEAL_KEY_ENV)
    return Path(env).expanduser() if env else data_dir() / "seal.key"


def _pub_path(private: Path) -> Path:
    return private.with_suffix(".pub")


class SealEntry(BaseModel):
    """One line of the seal log."""

    v: int = 1
    kind: Literal["open", "seal"]
    run_id: str
    first: str
    """Hash of the run's first event (``run_start``): which run this is."""
    seq: int
    hash: str
    """Hash of the event at ``seq`` (the last event when the entry was written)."""
    ended: bool = False
    """The event at ``seq`` is ``run_end``."""
    status: str | None = None
    """``run_end``'s status when ``ended``."""
    run_dir: str = ""
    ts: str = ""
    prev: str = GENESIS_HASH
    key: str | None = None
    sig: str | None = None

    def signed_bytes(self) -> bytes:
        """What the signature covers: the canonical JSON of the entry without ``sig``."""
        return canonical_bytes(self.model_dump(exclude={"sig"}))

    def line(self) -> bytes:
        """The entry's line in the log (canonical JSON, no newline)."""
        return canonical_bytes(self.model_dump())


class SigningKey:
    """An Ed25519 private key read from a PEM file (``cryptography``)."""

    def __init__(self, private: Any, path: Path) -> None:
        self._private = private
        self.path = path
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_hex = raw.hex()

    def sign(self, data: bytes) -> str:
        """The signature of ``data``, hex."""
        return str(self._private.sign(data).hex())


def _verify_sig(public_hex: str, sig_hex: str, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(sig_hex), data
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_signing_key(path: Path | None = None) -> SigningKey | None:
    """The signing key at ``path`` (default :func:`key_path`), or None when there is none.

    Raises :class:`RecordError` when the file exists but is not an Ed25519 private key.
    """
    p = path or key_path()
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordError(f"{p}: cannot read the signing key: {exc.strerror or exc}") from exc
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise RecordError(f"{p}: not a PEM private key without a password") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise RecordError(f"{p}: not an Ed25519 key", hint="make one with `hazmat keys init`")
    return SigningKey(key, p)


def trusted_public_key(path: Path | None = None) -> str | None:
    """The public key (hex) seals must be signed with, or None when no key is configured.

    Read from ``<key>.pub`` (what ``hazmat keys init`` writes; an investigator can keep
    only this file), else from the private key. Raises :class:`RecordError` for a
    ``.pub`` file that does not hold a 32-byte hex key.
    """
    p = path or key_path()
    pub = _pub_path(p)
    try:
        text = pub.read_text().strip()
    except FileNotFoundError:
        key = load_signing_key(p)
        return key.public_hex if key else None
    except OSError as exc:
        raise RecordError(f"{pub}: cannot read: {exc.strerror or exc}") from exc
    try:
        if len(bytes.fromhex(text)) != 32:
            raise ValueError
    except ValueError:
        raise RecordError(f"{pub}: not an Ed25519 public key (64 hex digits)") from None
    return text.lower()


def init_key(path: Path | None = None) -> tuple[Path, str]:
    """Make a new Ed25519 signing key: ``path`` (default :func:`key_path`, mode 0600)
    and its public half ``<path>.pub``. Returns the path and the public key (hex).

    Raises :class:`ConfigError` when a key already exists there (it is never
    overwritten: seals signed with it would no longer verify), :class:`RecordError`
    when it cannot be written.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    p = path or key_path()
    if p.exists():
        raise ConfigError(
            f"{p}: a signing key exists already", hint="seals signed with it need it to verify"
        )
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    key = SigningKey(private, p)
    try:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        _pub_path(p).write_text(key.public_hex + "\n")
    except FileExistsError as exc:
        raise ConfigError(f"{p}: a signing key exists already") from exc
    except OSError as exc:
        raise RecordError(f"{p}: cannot write the signing key: {exc.strerror or exc}") from exc
    return p, key.public_hex


class LogProblem(BaseModel):
    """A line of the seal log that does not hold (1-based line number)."""

    line: int | None = None
    message: str


class SealLogRead(BaseModel):
    """The seal log read back: valid entries with their line numbers, and problems."""

    path: str
    entries: list[SealEntry] = Field(default_factory=list)
    lines: list[int] = Field(default_factory=list)
    problems: list[LogProblem] = Field(default_factory=list)
    torn: list[int] = Field(default_factory=list)
    """Lines that are not JSON entries (a writer killed mid-line); skipped."""


class SealLog:
    """The append-only seal log (see the module docs). Safe across processes (flock)."""

    def __init__(self, path: Path | None = None, *, key_file: Path | None = None) -> None:
        self.path = path or seal_log_path()
        self.key_file = key_file or key_path()

    def append(
        self,
        kind: Literal["open", "seal"],
        *,
        run_id: str,
        first: str,
        seq: int,
        hash: str,
        ended: bool = False,
        status: str | None = None,
        run_dir: str = "",
    ) -> SealEntry:
        """Append one entry (signed when a key is configured), fsync it, return it.

        Raises :class:`RecordError` when the log or the key cannot be used.
        """
        key = load_signing_key(self.key_file)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise RecordError(f"{self.path}: cannot open the seal log: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            prev, needs_newline = _tail_state(fd)
            entry = SealEntry(
                kind=kind,
                run_id=run_id,
                first=first,
                seq=seq,
                hash=hash,
                ended=ended,
                status=status,
                run_dir=run_dir,
                ts=utc_now(),
                prev=prev,
                key=key.public_hex if key else None,
            )
            if key is not None:
                entry.sig = key.sign(entry.signed_bytes())
            data = (b"\n" if needs_newline else b"") + entry.line() + b"\n"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            raise RecordError(f"{self.path}: cannot write the seal log: {exc.strerror}") from exc
        finally:
            os.close(fd)  # closing drops the lock
        return entry

    def read(self) -> SealLogRead:
        """Read every line and check the ``prev`` links. A missing log reads as empty.

        Raises :class:`RecordError` only when the file exists but cannot be read.
        """
        out = SealLogRead(path=str(self.path))
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return out
        except OSError as exc:
            raise RecordError(f"{self.path}: cannot read the seal log: {exc.strerror}") from exc
        prev = GENESIS_HASH
        for i, raw in enumerate(data.split(b"\n")):
            if not raw:
                continue
            entry = _parse(raw)
            if entry is None:
                out.torn.append(i + 1)
                continue
            if entry.prev != prev:
                out.problems.append(
                    LogProblem(
                        line=i + 1,
                        message="does not link to the line before it (an entry was removed "
                        "or edited)",
                    )
                )
            prev = hashlib.sha256(raw).hexdigest()
            out.entries.append(entry)
            out.lines.append(i + 1)
        return out


def latest_seal(run_id: str, *, log: SealLog | None = None) -> SealEntry | None:
    """The newest ``seal`` entry of ``run_id`` in the seal log, or None (e.g. to print
    after a run: ``hazmat run`` can say where and how its run was sealed).

    Raises :class:`RecordError` when the log exists but cannot be read.
    """
    entries = (log or SealLog()).read().entries
    return next((e for e in reversed(entries) if e.run_id == run_id and e.kind == "seal"), None)


def _parse(raw: bytes) -> SealEntry | None:
    try:
        obj = json.loads(raw)
        return SealEntry.model_validate(obj) if isinstance(obj, dict) else None
    except (ValueError, ValidationError):
        return None


def _tail_state(fd: int) -> tuple[str, bool]:
    """(sha256 of the last valid line, whether the file lacks a final newline)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return GENESIS_HASH, False
    start = max(0, size - _TAIL_BYTES)
    data = os.pread(fd, size - start, start)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first piece may be the end of a longer line
    for raw in reversed(lines):
        if raw and _parse(raw) is not None:
            return hashlib.sha256(raw).hexdigest(), not data.endswith(b"\n")
    return GENESIS_HASH, not data.endswith(b"\n")


class SealCheck(BaseModel):
    """What the seal log says about one run, checked against its events."""

    log: str
    state: Literal["sealed", "open", "not sealed"] = "not sealed"
    """``sealed``: the last entry is a seal; ``open``: the log says the run was (re)opened
    and not sealed since (it never ended); ``not sealed``: the log has no entry for it."""
    entries: int = 0
    seq: int | None = None
    hash: str | None = None
    ended: bool = False
    signed: bool = False
    key: str | None = None
    trusted_key: str | None = None
    problems: list[LogProblem] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def phrase(self) -> str:
        """A few words for a summary line: ``sealed at seq 12 (signed ...)``, ``not sealed``."""
        if self.state == "not sealed":
            return f"not sealed (no entry for this run in {self.log})"
        if self.state == "open":
            return f"not sealed: the seal log says the run was opened at seq {self.seq} and never ended"
        how = f"signed by {self.key[:16]}..." if self.signed and self.key else "unsigned"
        return f"sealed at seq {self.seq} ({how})"


def check_run_seals(
    run_id: str | None,
    events: Sequence[Mapping[str, Any]],
    *,
    torn_line: int | None = None,
    log: SealLog | None = None,
    trusted_key: str | Literal[False] | None = False,
) -> SealCheck:
    """Check a run's events (in chain order) against the seal log.

    ``trusted_key`` is the public key (hex) signatures must use; the default
    (``False``) reads it from the configured key (:func:`trusted_public_key`), None
    trusts any valid signature. Never raises for what it finds (problems say it);
    raises :class:`RecordError` when the log or the key file cannot be read.
    """
    sl = log or SealLog()
    trusted = trusted_public_key(sl.key_file) if trusted_key is False else trusted_key
    read = sl.read()
    out = SealCheck(log=str(sl.path), trusted_key=trusted)
    for p in read.problems:
        out.problems.append(LogProblem(line=p.line, message=f"seal log line {p.line}: {p.message}"))
    if read.torn:
        out.warnings.append(
            f"seal log {sl.path}: line(s) {', '.join(map(str, read.torn[:5]))} are not entries "
            "(a writer was killed mid-line); skipped"
        )
    same_id = [
        (e, ln) for e, ln in zip(read.entries, read.lines, strict=True) if e.run_id == run_id
    ]
    by_seq = {ev.get("seq"): ev.get("hash") for ev in events}
    first = events[0].get("hash") if events else None
    last_seq = events[-1].get("seq") if events else None
    mine = [(e, ln) for e, ln in same_id if e.first == first]
    out.entries = len(mine)
    if run_id is None or first is None or not same_id:
        return out
    if not mine:
        e, ln = same_id[-1]
        out.problems.append(
            LogProblem(
                line=ln,
                message=f"the seal log knows run {run_id} only with another first event "
                f"(line {ln}: {e.kind} at seq {e.seq}, {e.run_dir or 'no directory'}): the "
                "record was rewritten from its first event, or another run used the same id",
            )
        )
        return out
    if len(mine) != len(same_id):
        out.warnings.append(f"another run used the run id {run_id} (seal log {sl.path})")
    signed_at: int | None = None
    for e, ln in mine:
        where = f"seal log line {ln} ({e.kind} at seq {e.seq})"
        if e.seq not in by_seq:
            out.problems.append(
                LogProblem(
                    line=ln,
                    message=f"{where}: the record stops at seq {last_seq} (its tail was cut)",
                )
            )
        elif by_seq[e.seq] != e.hash:
            out.problems.append(
                LogProblem(
                    line=ln,
                    message=f"{where}: the event there hashes to {str(by_seq[e.seq])[:16]}..., "
                    f"the log says {e.hash[:16]}... (the record was rewritten)",
                )
            )
        if e.sig is not None or e.key is not None:
            if not (e.sig and e.key and _verify_sig(e.key, e.sig, e.signed_bytes())):
                out.problems.append(
                    LogProblem(line=ln, message=f"{where}: the signature does not verify")
                )
            elif trusted is not None and e.key != trusted:
                out.problems.append(
                    LogProblem(
                        line=ln,
                        message=f"{where}: signed by key {e.key[:16]}..., not by the configured "
                        f"key {trusted[:16]}...",
                    )
                )
            signed_at = signed_at or ln
        elif signed_at is not None:
            out.problems.append(
                LogProblem(
                    line=ln,
                    message=f"{where}: not signed, though the run's entry at line {signed_at} is",
                )
            )
    last, ln = mine[-1]
    out.seq, out.hash, out.ended = last.seq, last.hash, last.ended
    out.signed, out.key = last.sig is not None, last.key
    out.state = "sealed" if last.kind == "seal" else "open"
    if out.state == "sealed":
        if isinstance(last_seq, int) and last_seq > last.seq:
            out.problems.append(
                LogProblem(
                    line=ln,
                    message=f"the record was extended after it was sealed at seq {last.seq} "
                    f"({last_seq - last.seq} events since; seal log line {ln})",
                )
            )
        if torn_line is not None:
            out.problems.append(
                LogProblem(
                    line=ln,
                    message=f"events line {torn_line} is torn, but the seal log says the run "
                    f"was sealed at seq {last.seq} (no writer was open; line {ln})",
                )
            )
        if trusted is not None and not out.signed:
            out.warnings.append(f"the seal (seal log line {ln}) is not signed")
    elif events and events[-1].get("event") == RUN_END:
        out.warnings.append(
            f"the run ended at seq {last_seq}, but the seal log holds no seal since it was "
            f"opened at seq {last.seq} (line {ln}): the end is not sealed"
        )
    return out

"""Arguments several commands share: run directories, output folders, backend names."""

from __future__ import annotations

from pathlib import Path

from hazmat.errors import ConfigError

__all__ = ["check_backend", "check_out_dir", "resolve_run"]


def resolve_run(run: str) -> Path:
    """``run`` as a run directory: a path, or a run id under ``./runs``.

    Raises :class:`ConfigError` when neither holds a run.
    """
    path = Path(run)
    if (path / "events.jsonl").is_file() or (path / "run.json").is_file():
        return path
    alt = Path("runs") / run
    if (alt / "events.jsonl").is_file() or (alt / "run.json").is_file():
        return alt
    raise ConfigError(
        f"{run}: not a run directory (no run.json or events.jsonl)",
        hint="pass a path under your --out directory (hazmat runs lists them)",
    )


def check_out_dir(out: Path, *, option: str = "--out") -> None:
    """Refuse an output folder that is a file or cannot be made.

    Raises:
        ConfigError: ``out`` exists and is not a folder, or cannot be created.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out}: is a file, not a folder for run directories")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {out}: cannot create it: {exc.strerror or exc}") from None


def check_backend(name: str) -> None:
    """Refuse a backend name that is neither ``auto`` nor registered.

    Raises:
        UnknownBackendError: no such backend.
    """
    if name != "auto":
        from hazmat.sandbox import get_backend

        get_backend(name)

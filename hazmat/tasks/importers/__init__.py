"""Importers: tasks from other benchmarks as ordinary hazmat task folders.

::

    report = import_tasks("intercode-ctf", Path("../shared/benchmarks/intercode-ctf"), Path("X"))
    report.counts        # {"imported": ..., "proven": ..., "unproven": ..., "skipped": ...}

Sources: ``intercode-ctf`` (:mod:`.intercode`), ``cybench`` (:mod:`.cybench`), ``metr``
(:mod:`.metr`, a METR task family). Each writes ``OUT/<task>/task.yaml`` plus the files
it names, and the import report (``OUT/import-report.json``, ``OUT/IMPORT.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hazmat.errors import ConfigError
from hazmat.tasks.importers.base import ImportReport

__all__ = ["SOURCES", "ImportReport", "import_tasks"]

SOURCES = ("intercode-ctf", "cybench", "metr")
"""The benchmarks ``hazmat import`` reads."""


def _importer(source: str) -> Callable[[Path, Path], ImportReport]:
    if source == "intercode-ctf":
        from hazmat.tasks.importers.intercode import import_intercode

        return import_intercode
    if source == "cybench":
        from hazmat.tasks.importers.cybench import import_cybench

        return import_cybench
    if source == "metr":
        from hazmat.tasks.importers.metr import import_metr

        return import_metr
    raise ConfigError(f"unknown source {source!r}", hint=f"choose one of: {', '.join(SOURCES)}")


def import_tasks(source: str, path: Path, out: Path) -> ImportReport:
    """Import the tasks of benchmark ``source`` found at ``path`` into ``out``; write and
    return the import report.

    Raises:
        ConfigError: an unknown source, ``path`` missing or not in the source's format,
            or ``out`` is not an empty folder (or missing).
    """
    importer = _importer(source)
    path = Path(path)
    out = Path(out)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not empty", hint="import into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    report = importer(path, out)
    report.write(out)
    return report

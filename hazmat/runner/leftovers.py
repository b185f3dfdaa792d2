"""What a killed run left behind, removed before it resumes.

A ``hazmat run`` killed outright (``kill -9``) cannot stop its sandboxes: on Docker its
containers (stopped once their supervisor's stdin closes), volumes, networks and
per-episode images stay, labelled with the run; locally its backing folders and cgroups
stay, found through the markers of :mod:`hazmat.sandbox.local.leftovers`.
:func:`remove_leftovers` removes them (``hazmat run --resume`` calls it before any
episode runs again), except a halted sandbox the run kept on purpose (``--keep-on-halt``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from hazmat.errors import BackendUnavailableError
from hazmat.sandbox.local.leftovers import cleanup_run

__all__ = ["kept_containers", "remove_leftovers"]

log = structlog.get_logger("hazmat.runner")


def events_mentioning(run_dir: Path, word: str) -> Iterator[dict[str, Any]]:
    """The run's events whose line holds ``"word"`` (a quick filter before parsing; a
    line that does not parse, as a torn tail, is skipped)."""
    needle = f'"{word}"'
    with (run_dir / "events.jsonl").open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if needle not in line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                yield ev


def kept_containers(run_dir: Path) -> frozenset[str]:
    """Ids of the sandboxes the run kept on purpose (``note`` events of kind ``kept``)."""
    return frozenset(
        str(ev["container"])
        for ev in events_mentioning(run_dir, "kept")
        if ev.get("event") == "note" and ev.get("kind") == "kept" and ev.get("container")
    )


def remove_leftovers(run_dir: Path, run_id: str, backend: str) -> dict[str, int]:
    """Remove what earlier processes of run ``run_id`` left on the host (local sandboxes
    of dead processes) and, unless the run is ``local`` only, in the Docker daemon
    (everything labelled with the run but its kept sandboxes). Returns counts by kind.
    Never raises: without a daemon, or when the daemon fails, the Docker part is
    skipped (logged)."""
    counts = {"local_leftovers": len(cleanup_run(run_id))}
    if backend != "local":
        from hazmat.sandbox.docker.ledger import cleanup

        try:
            counts.update(cleanup(run_id, keep=kept_containers(run_dir)))
        except BackendUnavailableError as exc:
            log.info("leftovers_docker_skipped", run=run_id, why=exc.one_line())
        except Exception as exc:  # what stays is for `hazmat cleanup --run`; resume goes on
            log.warning("leftovers_docker_failed", run=run_id, error=f"{type(exc).__name__}: {exc}")
    return counts

"""A sandbox lost to a resource the agent exhausted ends the episode ``limit``, not
``error`` (see :mod:`hazmat.sandbox.limits`)."""

from __future__ import annotations

from hazmat.errors import HazmatError
from hazmat.record.log import EpisodeRecorder
from hazmat.runner.result import EpisodeResult
from hazmat.sandbox import Sandbox
from hazmat.sandbox.limits import ResourceLimited

__all__ = ["PRESSURE_KIND", "blame_limit", "note_pressure"]

PRESSURE_KIND = "limit_pressure"
"""``kind`` of the note naming a limit the sandbox's processes ran into and survived."""


async def blame_limit(
    sb: Sandbox, rec: EpisodeRecorder, result: EpisodeResult, exc: HazmatError | None = None
) -> bool:
    """When ``sb`` was lost to one of its own limits, end the episode ``limit`` with the
    resource (``limit (memory)``), record a ``limit`` event with the evidence, and return
    True; otherwise change nothing and return False. What was recorded before stays
    (the ``error`` event of the call that found the sandbox gone included; ``exc``, the
    error that found it gone when it was raised here, is recorded first)."""
    if not isinstance(sb, ResourceLimited):
        return False
    found = await sb.exhausted()
    if found is None:
        return False
    if exc is not None:
        rec.emit("error", kind=type(exc).__name__, message=exc.one_line())
    rec.emit(
        "limit",
        which=found.resource,
        limit=found.limit,
        evidence=found.evidence,
        message=f"the sandbox was lost: its processes exhausted its {found.resource} "
        f"({found.evidence})",
    )
    result.reason, result.detail, result.error = "limit", found.resource, None
    return True


async def note_pressure(sb: Sandbox, rec: EpisodeRecorder, result: EpisodeResult) -> None:
    """Record a note for every limit ``sb``'s processes ran into during the episode that
    did not end it (a fork bomb the pids limit held, a process the OOM killer took): the
    score stands, and an investigator sees why the agent's commands failed. Never raises
    (a backend that cannot tell says nothing)."""
    if not isinstance(sb, ResourceLimited):
        return
    for hit in await sb.pressure():
        if result.reason == "limit" and result.detail == hit.resource:
            continue  # the limit event already says it
        rec.emit(
            "note",
            kind=PRESSURE_KIND,
            which=hit.resource,
            limit=hit.limit,
            evidence=hit.evidence,
            message=f"the sandbox's processes ran into its {hit.resource} limit "
            f"({hit.evidence}); the sandbox lived on",
        )

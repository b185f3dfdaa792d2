"""What keeps the agent loop bounded and closed on failure: which model errors are retried,
a policy that raises halts the episode, the episode's wall-clock deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hazmat.policy.base import (
    Decision,
    RuleMatch,
)


def _retryable(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500 or status == 408
    name = type(exc).__name__.lower()
    return any(w in name for w in ("timeout", "connection", "ratelimit", "overloaded"))


def _fail_closed(exc: Exception) -> Decision:
    """A policy that raised halts the episode (rule ``policy-error``), with the exception."""
    return Decision(
        action="halt",
        reason=f"policy error: {exc}",
        rules=[
            RuleMatch(
                rule="policy-error",
                action="halt",
                severity="critical",
                title="the policy raised while deciding",
                evidence=f"{type(exc).__name__}: {exc}",
            )
        ],
    )


@contextlib.asynccontextmanager
async def _deadline(seconds: float | None) -> Any:
    if seconds is None:
        yield
        return
    async with asyncio.timeout(seconds):
        yield

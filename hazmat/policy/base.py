"""The policy interface the agent loop's gate calls.

A policy sees every proposed tool call (``before``) and every observation
(``after``) and returns a :class:`Decision`. Decisions order by strictness:
``allow < log < block < halt``; the strictest matching rule wins. ``ask`` is
resolved to ``allow`` or ``block`` by a person at the terminal before it
reaches the gate (with no terminal it acts as ``block``).

Per-episode state (flow rules, counters) lives in a :class:`PolicySession`
made by :meth:`Policy.session`, so one policy object serves many episodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "STRICTNESS",
    "Action",
    "AllowAllPolicy",
    "Decision",
    "Observation",
    "Policy",
    "PolicySession",
    "RuleMatch",
    "ToolCall",
    "strictest",
]

Action = Literal["allow", "log", "block", "halt"]

STRICTNESS: dict[str, int] = {"allow": 0, "log": 1, "ask": 2, "block": 3, "halt": 4}


class ToolCall(BaseModel):
    """One tool call the model proposed."""

    model_config = ConfigDict(frozen=True)

    id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class Observation(BaseModel):
    """What a tool call produced, as the policy's ``after`` stage sees it."""

    model_config = ConfigDict(frozen=True)

    call: ToolCall
    exit_code: int | None = None
    output: str = ""
    """The full output text (stdout then stderr), not the model's truncated view."""
    signals: list[dict[str, Any]] = Field(default_factory=list)
    """Monitor signals after the step (file changes, processes, network attempts)."""


class RuleMatch(BaseModel):
    """One rule that matched, and why."""

    model_config = ConfigDict(frozen=True)

    rule: str
    action: str
    severity: str = "info"
    title: str = ""
    evidence: str = ""


class Decision(BaseModel):
    """The policy's answer for one call or observation."""

    model_config = ConfigDict(frozen=True)

    action: Action = "allow"
    rules: list[RuleMatch] = Field(default_factory=list)
    reason: str = ""
    """One line for the model (on block) and for people (on halt)."""

    @property
    def rule_ids(self) -> list[str]:
        """Ids of every rule that matched."""
        return [m.rule for m in self.rules]


def strictest(decisions: list[Decision]) -> Decision:
    """Merge decisions: the strictest action wins, every matched rule is kept."""
    if not decisions:
        return Decision()
    top = max(decisions, key=lambda d: STRICTNESS[d.action])
    rules = [m for d in decisions for m in d.rules]
    return Decision(action=top.action, rules=rules, reason=top.reason)


class PolicySession(Protocol):
    """Per-episode policy state; the gate calls it once per call and observation."""

    def before(self, call: ToolCall) -> Decision:
        """Decide on a proposed call before it runs."""
        ...

    def after(self, observation: Observation) -> Decision:
        """Decide on what a call produced (``after`` rules, monitor signals)."""
        ...


class Policy(Protocol):
    """A policy: a name and a factory of per-episode sessions."""

    name: str

    def session(
        self, *, secrets: dict[str, str] | None = None, hosts: Iterable[str] | None = None
    ) -> PolicySession:
        """Start the per-episode state. ``secrets`` are the episode's canaries/flags;
        ``hosts`` the task's declared hosts (its services' names and its sandbox
        ``allow_hosts``): every other destination is outside the task. ``None``: not known."""
        ...


class _AllowAllSession:
    def before(self, call: ToolCall) -> Decision:
        return Decision()

    def after(self, observation: Observation) -> Decision:
        return Decision()


class AllowAllPolicy:
    """Allows everything. Used where no policy is configured and in tests."""

    name = "allow-all"

    def session(
        self, *, secrets: dict[str, str] | None = None, hosts: Iterable[str] | None = None
    ) -> PolicySession:
        """Start an episode under a policy that allows every call."""
        return _AllowAllSession()

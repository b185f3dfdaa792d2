"""What one episode's agent loop is given and gives back: its limits and model retries,
the record writer it emits to, each step's record, a guide's word after a round of
tool calls, the outcome with its end reason; and a message as the record holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ToolMessage,
)

from hazmat.policy.base import (
    Decision,
    ToolCall,
)
from hazmat.tools.base import ToolOutput

__all__ = [
    "Emit",
    "EndReason",
    "Guidance",
    "LoopLimits",
    "LoopOutcome",
    "RetryPolicy",
    "StepRecord",
]


EndReason = Literal["submitted", "completed", "limit", "halted", "error", "interrupted"]
"""How the loop ended; ``interrupted`` (the operator stopped the run) is never recorded as
an episode end reason: an interrupted episode is run again on resume."""


class Emit(Protocol):
    """Writes one record event (the recorder bound to this episode)."""

    def __call__(self, event: str, **fields: Any) -> Any:
        """Record ``event`` with ``fields``."""
        ...


@dataclass(frozen=True)
class LoopLimits:
    """When the loop stops on its own. ``None`` means no limit."""

    steps: int | None = 30
    seconds: float | None = 600.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    nudges: int = 2
    """Turns without a tool call tolerated before the text counts as the answer."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of model calls that failed for a passing reason."""

    attempts: int = 4
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 30.0


@dataclass
class StepRecord:
    """One proposed tool call and what became of it (the trace checks read)."""

    step: int
    call: ToolCall
    decision: Decision
    output: ToolOutput | None = None
    malformed: str | None = None
    t: float = 0.0
    """Seconds since the episode started."""


@dataclass(frozen=True)
class Guidance:
    """What a guide (guided questions) says after a round of tool calls: text for the
    model (the next question) and/or that the episode ends, with its reason and detail."""

    message: str | None = None
    end: tuple[EndReason, str] | None = None


@dataclass
class LoopOutcome:
    """How the loop ended."""

    reason: EndReason
    detail: str = ""
    submission: str | None = None
    steps: int = 0
    turns: int = 0
    malformed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    halt: dict[str, Any] | None = None
    decisions: dict[str, int] = field(default_factory=dict)
    messages: list[BaseMessage] = field(default_factory=list)


def _message_dict(msg: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": msg.type, "content": msg.content}
    if isinstance(msg, AIMessage):
        out["tool_calls"] = [
            {"id": c["id"], "name": c["name"], "args": c["args"]} for c in msg.tool_calls
        ]
        if msg.invalid_tool_calls:
            out["invalid_tool_calls"] = [
                {
                    "id": c.get("id"),
                    "name": c.get("name"),
                    "args": c.get("args"),
                    "error": c.get("error"),
                }
                for c in msg.invalid_tool_calls
            ]
        reasoning = msg.additional_kwargs.get("reasoning_content")
        if reasoning:
            out["reasoning"] = reasoning
    if isinstance(msg, ToolMessage):
        out["tool_call_id"] = msg.tool_call_id
    return out

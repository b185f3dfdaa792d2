"""The replay agent: a scripted chat model that answers every model turn with the recorded
response (tool calls with their ids, malformed calls, reasoning, token usage), read
whole from the record by :func:`recorded_messages`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from hazmat.agents.models import Agent
from hazmat.agents.scripted import ScriptedChatModel
from hazmat.replay.trace import EpisodeTrace

__all__ = ["ReplayAgent", "ReplayChatModel", "ReplayExhaustedError", "recorded_messages"]


class ReplayExhaustedError(Exception):
    """The replay agent was asked for a model turn the record does not have."""


class ReplayChatModel(ScriptedChatModel):
    """A chat model that answers turn *i* with the *i*-th recorded response.

    When the record has no more responses it raises :class:`ReplayExhaustedError`
    (not retried), which ends the replayed episode with reason ``error``.
    """

    @property
    def _llm_type(self) -> str:
        return "hazmat-replay"

    def _next(self) -> ChatResult:
        i = self._index
        self._index += 1
        if i >= len(self.turns):
            raise ReplayExhaustedError(
                f"the record has no model response for turn {i + 1} (it holds {len(self.turns)})"
            )
        msg = self.turns[i].model_copy(deep=True)
        return ChatResult(generations=[ChatGeneration(message=msg)])


@dataclass(frozen=True)
class ReplayAgent(Agent):
    """An agent whose model plays a recorded episode's responses back."""

    responses: tuple[AIMessage, ...] = ()

    @property
    def is_scripted(self) -> bool:
        """Replay agents need no model endpoint."""
        return True

    def make_model(self, solution: list[dict[str, Any]] | None = None) -> BaseChatModel:
        """A fresh replay model (the recorded responses, in order)."""
        return ReplayChatModel(turns=list(self.responses), label=self.name)


def recorded_messages(ep: EpisodeTrace, until: int | None = None) -> list[AIMessage]:
    """The recorded model responses of ``ep`` as AIMessages, cut after step ``until``.

    Tool calls keep their recorded ids (so step numbering and call ids replay
    exactly); malformed calls come back as invalid tool calls; reasoning and token
    usage are kept (token limits trip at the same turn).
    """
    step_of: dict[str, int] = {s.call_id: s.step for s in ep.steps if s.call_id}
    out: list[AIMessage] = []
    for turn in ep.turns:
        resp = turn.response
        calls = []
        for c in resp.get("tool_calls") or []:
            if not isinstance(c, dict):
                continue
            cid = str(c.get("id") or "")
            if until is not None and step_of.get(cid, 0) > until:
                continue
            args = c.get("args")
            calls.append(
                {
                    "name": str(c.get("name", "")),
                    "args": args if isinstance(args, dict) else {},
                    "id": cid,
                    "type": "tool_call",
                }
            )
        invalid = []
        for c in resp.get("invalid_tool_calls") or []:
            if not isinstance(c, dict):
                continue
            cid = str(c.get("id") or "")
            if until is not None and step_of.get(cid, 0) > until:
                continue
            raw = c.get("args")
            invalid.append(
                {
                    "name": c.get("name"),
                    "args": raw if isinstance(raw, str) else json.dumps(raw),
                    "id": cid or None,
                    "error": c.get("error"),
                    "type": "invalid_tool_call",
                }
            )
        content = resp.get("content", "")
        kwargs: dict[str, Any] = {}
        if resp.get("reasoning"):
            kwargs["reasoning_content"] = resp["reasoning"]
        usage = turn.event.get("usage")
        meta: Any = None
        if isinstance(usage, dict) and all(
            isinstance(usage.get(k), int) for k in ("input_tokens", "output_tokens")
        ):
            meta = {
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "total_tokens": int(
                    usage.get("total_tokens") or usage["input_tokens"] + usage["output_tokens"]
                ),
            }
        msg = AIMessage(
            content=content if isinstance(content, str | list) else str(content),
            tool_calls=calls,
            invalid_tool_calls=invalid,
            additional_kwargs=kwargs,
            usage_metadata=meta,
        )
        if until is not None and turn.steps and all(s.step > until for s in turn.steps):
            break
        out.append(msg)
        if until is not None and any(s.step >= until for s in turn.steps):
            break
    return out

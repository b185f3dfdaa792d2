"""Scripted chat models: the ``solution``, ``null``, ``scripted:FILE`` and replay agents.

A scripted agent is a LangChain chat model that answers each turn with the next
scripted message, so it feeds the very same agent graph as a real model: there
is one loop, not two.

A script is a list of turns. A turn is one tool call (``{tool: bash, command: ...}``,
the task.yaml ``solution`` form; ``say:`` adds what the model says with it),
several (``{tool_calls: [...], content: ...}``), or plain text (``{content: "..."}``).
A file may also be a mapping ``{steps: [...], repeat: true}``, which plays the turns
forever (for limit tests).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from hazmat.errors import ConfigError

__all__ = ["ScriptedChatModel", "load_script", "turn_to_message"]


def turn_to_message(turn: dict[str, Any] | AIMessage, index: int) -> AIMessage:
    """Make one scripted turn into the AIMessage a model would have sent.

    Raises:
        ConfigError: the turn is neither a tool call, a list of them, nor text.
    """
    if isinstance(turn, AIMessage):
        return turn
    if not isinstance(turn, dict):
        raise ConfigError(f"script turn {index}: expected a mapping, got {type(turn).__name__}")
    if "tool" in turn:
        calls = [{k: v for k, v in turn.items() if k != "say"}]
        content = str(turn.get("say", ""))
    elif "tool_calls" in turn:
        calls = list(turn["tool_calls"])
        content = str(turn.get("content", ""))
    elif "content" in turn:
        calls, content = [], str(turn["content"])
    else:
        raise ConfigError(f"script turn {index}: needs 'tool', 'tool_calls' or 'content'")
    tool_calls = []
    invalid = []
    for j, call in enumerate(calls):
        if not isinstance(call, dict) or "tool" not in call:
            raise ConfigError(f"script turn {index}: tool call {j} needs a 'tool' key")
        call_id = str(call.get("id") or f"call_{index}_{j}")
        if "raw_args" in call:  # a deliberately malformed call (bad JSON), for tests
            invalid.append(
                {
                    "name": call["tool"],
                    "args": str(call["raw_args"]),
                    "id": call_id,
                    "error": None,
                    "type": "invalid_tool_call",
                }
            )
            continue
        args = (
            call["args"]
            if "args" in call
            else {k: v for k, v in call.items() if k not in ("tool", "id")}
        )
        tool_calls.append(
            {"name": str(call["tool"]), "args": dict(args), "id": call_id, "type": "tool_call"}
        )
    return AIMessage(content=content, tool_calls=tool_calls, invalid_tool_calls=invalid)


def load_script(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Read a script file (YAML or JSON): returns the turns and whether to repeat.

    Raises:
        ConfigError: the file is missing or not a script.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read script {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    repeat = False
    if isinstance(data, dict):
        repeat = bool(data.get("repeat", False))
        data = data.get("steps")
    if not isinstance(data, list):
        raise ConfigError(f"{path}: a script is a list of turns (or {{steps: [...]}})")
    return data, repeat


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a fixed list of turns, then says it is done.

    When the turns run out it answers with plain text (``final``), which ends the
    episode like a model that stopped calling tools.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    turns: list[Any]
    repeat: bool = False
    final: str = "I am done."
    label: str = "scripted"
    _index: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "hazmat-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override,unused-ignore]
        """Scripted models ignore the tool schemas (their calls are fixed)."""
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._next()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._next()  # no thread hop: the turn is already known

    async def ainvoke(
        self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> AIMessage:
        """The next scripted turn, without LangChain's per-call message conversion (which
        costs time in proportion to the history; a scripted turn does not read it)."""
        msg = self._next().generations[0].message
        assert isinstance(msg, AIMessage)
        return msg

    def _next(self) -> ChatResult:
        i = self._index
        self._index += 1
        if self.repeat and self.turns:
            msg = turn_to_message(self.turns[i % len(self.turns)], i)
            msg = _fresh_ids(msg, i)
        elif i < len(self.turns):
            msg = turn_to_message(self.turns[i], i)
        else:
            msg = AIMessage(content=self.final)
        return ChatResult(generations=[ChatGeneration(message=msg)])


def _fresh_ids(msg: AIMessage, index: int) -> AIMessage:
    calls = [dict(c, id=f"call_{index}_{j}") for j, c in enumerate(msg.tool_calls)]
    return AIMessage(
        content=msg.content, tool_calls=calls, invalid_tool_calls=msg.invalid_tool_calls
    )

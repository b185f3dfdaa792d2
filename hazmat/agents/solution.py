"""The ``solution`` agent's model when the reference moves capture values from outputs.

A :class:`~hazmat.agents.scripted.ScriptedChatModel` whose turns come from a
:class:`~hazmat.tasks.solution.SolutionScript`: turn ``i`` is made only when the model is
asked for it, so ``{{captured.NAME}}`` holds what earlier steps printed (the runner feeds
each step's full output to the script).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from hazmat.agents.scripted import ScriptedChatModel, turn_to_message
from hazmat.tasks.solution import SolutionScript

__all__ = ["CapturingSolutionModel"]


class CapturingSolutionModel(ScriptedChatModel):
    """Plays a solution script turn by turn, filling captures at the last moment."""

    script: Any = None
    """The :class:`SolutionScript` (``Any`` for pydantic: it is a plain dataclass)."""

    @classmethod
    def of(cls, script: SolutionScript, *, label: str = "solution") -> CapturingSolutionModel:
        """The model for ``script``."""
        return cls(turns=[], script=script, label=label)

    def _next(self) -> ChatResult:
        i = self._index
        self._index += 1
        script: SolutionScript = self.script
        msg = turn_to_message(script.turn(i), i) if i < len(script) else AIMessage(self.final)
        return ChatResult(generations=[ChatGeneration(message=msg)])

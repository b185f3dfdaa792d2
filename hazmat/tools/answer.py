"""The built-in ``answer`` tool: the agent answers the task's questions with it.

A task with ``questions:`` gets it (see :mod:`hazmat.tasks.questions`). Each call
answers one question; whether the answer is right is for the ``{answer: ID}`` check to
decide, never for the tool (the agent learns nothing from its reply). The tool's
``data`` (``question``, ``accepted``) goes into the trace, which the check reads.
"""

from __future__ import annotations

from typing import Any

from hazmat.sandbox.base import Sandbox
from hazmat.tasks.questions import ANSWER_TOOL, QuestionState
from hazmat.tools.base import Tool, ToolOutput

__all__ = ["AnswerTool"]


class AnswerTool(Tool):
    """Answers one of the task's questions (one instance per episode: it holds the state)."""

    name = ANSWER_TOOL
    description = (
        "Answer one of the task's questions. Give the question's id (in guided mode it "
        "defaults to the question you were last shown) and your answer. Each question "
        "takes a limited number of answers; you are not told whether an answer is right."
    )
    parameters = {
        "type": "object",
        "properties": {
            "question": {"type": "string", "description": "the question's id"},
            "answer": {"type": "string", "description": "your answer"},
        },
        "required": ["answer"],
    }

    def __init__(self, state: QuestionState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        question = args.get("question")
        q, message = self.state.accept(
            question if isinstance(question, str) else None, args["answer"]
        )
        data = {"question": q.id if q else question, "accepted": q is not None}
        return ToolOutput(tool=self.name, text=message, is_error=q is None, data=data)

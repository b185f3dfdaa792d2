"""Questions: ordered questions with exact answers, answered with the built-in ``answer`` tool.

::

    questions:
      mode: guided               # guided: revealed one by one | unguided: all at once
      attempts: 1                # answers counted per question (later ones are refused)
      items:
        - id: missing-file
          question: What is the file that is missing?
          answer: secret.py      # or a list of accepted answers
          format: "******.py"    # shown to the agent
          ignore_case: false
          whitespace: strip      # strip | collapse | remove | exact
          match: exact           # exact | regex (the answer is a regex, fully matched)
          steps: 10              # guided: this question's own step budget
          hints: [Look at the imports of source.py]

Each question is scored by an ``{answer: ID}`` check; a task whose ``milestones:`` is
empty gets one milestone per question (id, title and weight from the question), so
per-question scores are recorded as milestones. In ``guided`` mode the agent sees one
question at a time: answering it (right or wrong) or running out of its step budget
reveals the next, and the episode ends after the last. :class:`QuestionState` is that
bookkeeping, without any agent or sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ANSWER_TOOL",
    "Question",
    "QuestionSet",
    "QuestionState",
    "answer_matches",
    "normalize_answer",
]

ANSWER_TOOL = "answer"
"""The built-in tool the agent answers questions with."""

_SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Whitespace = Literal["strip", "collapse", "remove", "exact"]


class Question(_Frozen):
    """One question with its exact answer(s) and how answers are compared."""

    id: str = Field(pattern=_SLUG)
    """The question's id (the milestone id, and what `answer` calls name)."""
    question: str = Field(min_length=1)
    """What the agent is asked."""
    answer: str | list[str]
    """The exact answer, or a list of accepted answers (regexes with `match: regex`)."""
    format: str | None = None
    """The answer's shape, shown to the agent (e.g. ``***{*****}``)."""
    hints: list[str] = Field(default_factory=list)
    """Shown with the question."""
    match: Literal["exact", "regex"] = "exact"
    """`exact`: equal after normalising; `regex`: the answer is a regex the whole normalised text must match."""
    ignore_case: bool = False
    """Compare without case."""
    whitespace: Whitespace = "strip"
    """`strip` the ends, `collapse` runs of whitespace, `remove` all of it, or keep it `exact`."""
    steps: int | None = Field(None, ge=1)
    """Guided mode: the steps the agent may spend on this question."""
    weight: float = Field(1.0, gt=0)
    """The milestone's weight."""

    @field_validator("answer")
    @classmethod
    def _answers(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("answer: give at least one accepted answer")
        return value

    @model_validator(mode="after")
    def _regexes(self) -> Question:
        if self.match == "regex":
            for pattern in self.answers:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"answer: bad regex {pattern!r}: {exc}") from None
        return self

    @property
    def answers(self) -> list[str]:
        """Every accepted answer (or regex)."""
        return [self.answer] if isinstance(self.answer, str) else list(self.answer)


class QuestionSet(_Frozen):
    """The task's questions, in order, and how they are put to the agent."""

    mode: Literal["guided", "unguided"] = "guided"
    """`guided`: one question at a time, each with its own step budget; `unguided`: all at once, answered by id."""
    attempts: int = Field(1, ge=1)
    """Answers counted per question; later ones are refused."""
    items: list[Question] = Field(min_length=1)
    """The questions, in order (a bare list under `questions:` means these)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return {"items": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _unique(self) -> QuestionSet:
        seen: set[str] = set()
        for i, q in enumerate(self.items):
            if q.id in seen:
                raise ValueError(f"items[{i}].id: duplicate question id {q.id!r}")
            seen.add(q.id)
        return self

    def get(self, question_id: str) -> Question | None:
        """The question with that id, or None."""
        return next((q for q in self.items if q.id == question_id), None)

    def index(self, question_id: str) -> int:
        """0-based position of a question. Raises ValueError when there is none."""
        for i, q in enumerate(self.items):
            if q.id == question_id:
                return i
        raise ValueError(question_id)


def normalize_answer(text: str, q: Question) -> str:
    """``text`` normalised as question ``q`` says (whitespace, then case)."""
    if q.whitespace == "strip":
        text = text.strip()
    elif q.whitespace == "collapse":
        text = " ".join(text.split())
    elif q.whitespace == "remove":
        text = "".join(text.split())
    return text.casefold() if q.ignore_case else text


def answer_matches(text: str, q: Question) -> bool:
    """True when ``text`` is an accepted answer to ``q``."""
    got = normalize_answer(text, q)
    for want in q.answers:
        if q.match == "regex":
            flags = re.IGNORECASE if q.ignore_case else 0
            if re.fullmatch(want, got, flags) is not None:
                return True
        elif got == normalize_answer(want, q):
            return True
    return False


def _describe(q: Question, number: int, total: int) -> str:
    lines = [f"Question {number} of {total} (id: {q.id}): {q.question}"]
    if q.format:
        lines.append(f"Answer format: {q.format}")
    for hint in q.hints:
        lines.append(f"Hint: {hint}")
    return "\n".join(lines)


@dataclass
class QuestionState:
    """Which question is open, what was answered, and each question's step budget.

    The answer tool asks :meth:`accept` whether an answer may be given; the agent loop
    tells :meth:`after_steps` how many steps ran and gets back the text revealing the
    next question (guided mode) or that every question is done.
    """

    questions: QuestionSet
    answered: dict[str, list[str]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    """Guided: questions closed, in order (answered or out of budget)."""
    opened_at: int = 0
    """Guided: the step count when the current question was revealed."""
    notes: list[dict[str, Any]] = field(default_factory=list)
    """What happened to each question (revealed, answered, out of budget), for the record."""

    @property
    def guided(self) -> bool:
        """True in guided mode."""
        return self.questions.mode == "guided"

    @property
    def current(self) -> Question | None:
        """Guided: the open question (None once every question is closed)."""
        items = self.questions.items
        n = len(self.closed)
        return items[n] if self.guided and n < len(items) else None

    @property
    def done(self) -> bool:
        """True when no question is left to answer."""
        if self.guided:
            return len(self.closed) >= len(self.questions.items)
        return all(
            len(self.answered.get(q.id, [])) >= self.questions.attempts
            for q in self.questions.items
        )

    @property
    def settled(self) -> bool:
        """True when no question can take another answer (each is answered or closed)."""
        return all(
            q.id in self.closed or len(self.answered.get(q.id, [])) >= self.questions.attempts
            for q in self.questions.items
        )

    def intro(self) -> str:
        """The text added to the instructions: the first question, or all of them."""
        items = self.questions.items
        total = len(items)
        if self.guided:
            head = (
                f"Answer {total} question(s), one at a time, with the answer tool. "
                "Each question is shown after the previous one is answered."
            )
            return f"{head}\n\n{_describe(items[0], 1, total)}"
        head = (
            f"Answer these {total} question(s) with the answer tool "
            "(give the question id with each answer)."
        )
        return head + "\n\n" + "\n\n".join(_describe(q, i, total) for i, q in enumerate(items, 1))

    def accept(self, question_id: str | None, answer: str) -> tuple[Question | None, str]:
        """Take one answer. Returns (the question answered, the agent's message); the
        question is None when the answer was refused (unknown, not open, no attempts left)."""
        if question_id is None or question_id == "":
            if not self.guided:
                return None, "give the question id with your answer"
            question_id = self.current.id if self.current else ""
        q = self.questions.get(question_id)
        if q is None:
            known = ", ".join(x.id for x in self.questions.items)
            return None, f"no question {question_id!r} (questions: {known})"
        if self.guided and (self.current is None or self.current.id != q.id):
            return None, f"question {q.id!r} is not open (answer the current question)"
        given = self.answered.setdefault(q.id, [])
        if len(given) >= self.questions.attempts:
            return None, f"question {q.id!r} was already answered"
        given.append(answer)
        self.notes.append({"kind": "answered", "question": q.id, "attempt": len(given)})
        return q, f"answer to question {q.id!r} recorded"

    def after_steps(self, steps: int) -> tuple[str | None, bool]:
        """After the loop ran to ``steps`` steps: (text revealing the next question or
        None, whether every question is done).

        Guided: the open question closes when it has all its answers or has used its
        step budget; the next one opens with its own budget.
        """
        if not self.guided:
            return None, self.done
        texts: list[str] = []
        while (q := self.current) is not None:
            used = steps - self.opened_at
            answered = len(self.answered.get(q.id, [])) >= self.questions.attempts
            out_of_budget = q.steps is not None and used >= q.steps
            if not (answered or out_of_budget):
                break
            self.closed.append(q.id)
            if not answered:
                self.notes.append({"kind": "out_of_budget", "question": q.id, "steps": used})
            self.opened_at = steps
            nxt = self.current
            if nxt is not None:
                total = len(self.questions.items)
                number = len(self.closed) + 1
                why = "" if answered else f"The steps for question {q.id!r} ran out. "
                texts.append(why + _describe(nxt, number, total))
                self.notes.append({"kind": "revealed", "question": nxt.id, "step": steps})
        return ("\n\n".join(texts) or None), self.done


def first_answers(trace: Sequence[Any], question_id: str, attempts: int) -> list[str]:
    """The answers the agent gave to ``question_id`` (executed answer calls, in order,
    at most ``attempts``), from a trace of :class:`~hazmat.tasks.checks.TraceStep`."""
    out: list[str] = []
    for step in trace:
        if step.tool != ANSWER_TOOL or not step.executed:
            continue
        data = getattr(step, "data", {}) or {}
        if data.get("question") != question_id or not data.get("accepted"):
            continue
        out.append(str(step.args.get("answer", "")))
    return out[:attempts]

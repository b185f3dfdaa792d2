"""Questions: exact answers normalised as the author says, the answer tool, guided mode.

Issue 15, failure 5: hazmat had one ``submit``, so Cybench's ordered subtasks (each with
an exact answer and its own step budget) needed a copied answer tool and trace checks.
The episodes run in a real local sandbox through the real agent loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmat.tasks import load_task
from hazmat.tasks.questions import Question, QuestionSet, QuestionState, answer_matches

from .helpers import notes, play, write_task

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TASK = """\
id: t/questions
title: questions
category: examples
instructions: Answer the questions.
tools: [bash]
limits: {steps: 20}
questions:
  mode: guided
  items:
    - {id: file, question: "Which file is missing?", answer: secret.py, format: "******.py", steps: 2}
    - {id: count, question: "How many rounds?", answer: "  12 ", steps: 2}
    - id: flag
      question: The flag?
      answer: 'HTB\\{[a-z_]+\\}'
      match: regex
      ignore_case: true
      steps: 3
solution:
  - {tool: answer, answer: secret.py}
  - {tool: answer, answer: "12"}
  - {tool: bash, command: "echo HTB{found_it}"}
  - {tool: answer, answer: "htb{found_it}"}
"""


def test_answers_normalised_as_the_author_says() -> None:
    q = Question(
        id="a", question="?", answer="Hello  World", whitespace="collapse", ignore_case=True
    )
    assert answer_matches("  hello world\n", q)
    assert not answer_matches("helloworld", q)
    r = Question(id="b", question="?", answer=["0x6e8", "1768"], whitespace="remove")
    assert (
        answer_matches(" 0x6e8 ", r)
        and answer_matches("17 68", r)
        and not answer_matches("0x6E8", r)
    )
    x = Question(id="c", question="?", answer=r"HTB\{\w+\}", match="regex")
    assert answer_matches("HTB{abc}", x) and not answer_matches("xHTB{abc}", x)


def test_questions_become_milestones_and_add_the_answer_tool(tmp_path: Path) -> None:
    task = load_task(write_task(tmp_path / "t", TASK))
    assert [m.id for m in task.milestones] == ["file", "count", "flag"]
    assert [m.check.answer.question for m in task.milestones if m.check.answer] == [
        "file",
        "count",
        "flag",
    ]
    assert "answer" in task.tools


def test_guided_state_reveals_one_question_at_a_time() -> None:
    qs = QuestionSet.model_validate(
        [
            {"id": "a", "question": "A?", "answer": "1", "steps": 2},
            {"id": "b", "question": "B?", "answer": "2"},
        ]
    )
    state = QuestionState(qs)
    assert "Question 1 of 2" in state.intro() and "B?" not in state.intro()
    q, msg = state.accept("b", "2")
    assert q is None and "not open" in msg
    assert state.after_steps(1) == (None, False)
    text, done = state.after_steps(2)  # a's budget is used up: b opens
    assert text is not None and "B?" in text and "ran out" in text and not done
    q, _ = state.accept(None, "2")
    assert q is not None and q.id == "b"
    assert state.after_steps(3) == (None, True)


async def test_guided_episode_scores_each_question(tmp_path: Path) -> None:
    """The reference solution answers all three: each question is a milestone reached at
    its answer's step; the flag answer matches the regex case-insensitively."""
    task = load_task(write_task(tmp_path / "t", TASK))
    result, events = await play(task, None, tmp_path / "runs")
    assert result.reason == "completed", result
    assert [(m["id"], m["step"]) for m in result.milestones] == [
        ("file", 1),
        ("count", 2),
        ("flag", 4),
    ]
    assert result.progress == 1.0
    revealed = [n["question"] for n in notes(events, "question_revealed")]
    assert revealed == ["count", "flag"]
    first = next(e for e in events if e["event"] == "model_call")
    assert "Question 1 of 3" in str(first["messages_new"]) and "How many rounds" not in str(
        first["messages_new"]
    )


async def test_wrong_answer_and_budget_move_on(tmp_path: Path) -> None:
    """A wrong first answer scores nothing and opens the next question; a question whose
    step budget runs out closes unanswered; the episode ends after the last."""
    task = load_task(write_task(tmp_path / "t", TASK))
    script = [
        {"tool": "answer", "answer": "wrong.py"},
        {"tool": "answer", "question": "file", "answer": "secret.py"},  # not open any more
        {"tool": "bash", "command": "true"},  # count's budget (2 steps) runs out here
        {"tool": "answer", "answer": "HTB{yes}"},
    ]
    result, events = await play(task, script, tmp_path / "runs")
    assert [m["id"] for m in result.milestones] == ["flag"]
    assert result.progress == pytest.approx(1 / 3)
    assert result.reason == "completed"
    out = [n["question"] for n in notes(events, "question_out_of_budget")]
    assert out == ["count"]
    refused = [e for e in events if e["event"] == "tool_result" and e.get("tool") == "answer"]
    assert refused[1]["is_error"] and "not open" in refused[1]["text"]


async def test_unguided_all_questions_at_once(tmp_path: Path) -> None:
    text = TASK.replace("mode: guided", "mode: unguided")
    task = load_task(write_task(tmp_path / "t", text))
    script = [
        {"tool": "answer", "question": "flag", "answer": "HTB{a}"},
        {"tool": "answer", "answer": "no id"},
        {"tool": "answer", "question": "count", "answer": "12"},
        {"tool": "answer", "question": "file", "answer": "x.py"},
    ]
    result, events = await play(task, script, tmp_path / "runs")
    assert sorted(m["id"] for m in result.milestones) == ["count", "flag"]
    # the final milestone (flag) was reached first, but the episode went on until every
    # question had its answer
    assert result.reason == "completed" and result.steps == 4
    first = next(e for e in events if e["event"] == "model_call")
    assert "How many rounds" in str(first["messages_new"])

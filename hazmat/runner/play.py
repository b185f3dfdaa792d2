"""The agent loop of one episode: tools, model, milestones after every step, the
questions' guidance, monitors, and the checks once more at the end."""

from __future__ import annotations

import asyncio
from typing import Any

from hazmat.agents.graph import EpisodeLoop, Guidance, LoopLimits, RetryPolicy, StepRecord
from hazmat.agents.models import Agent
from hazmat.policy.base import Decision, Observation, Policy
from hazmat.policy.compose import declared_hosts
from hazmat.record.log import EpisodeRecorder
from hazmat.runner.result import EpisodeResult
from hazmat.sandbox import Sandbox
from hazmat.tasks import CheckContext, MilestoneTracker, RenderedTask, Task, TraceStep
from hazmat.tasks.contacts import accepted_connections, contacts_since
from hazmat.tasks.questions import QuestionState
from hazmat.tasks.solution import SolutionScript
from hazmat.tools import Tool, make_tools

__all__ = ["chat_model", "play"]


def _solution_turns(rendered: RenderedTask) -> list[dict[str, Any]]:
    turns = []
    for step in rendered.task.solution:
        data = (
            step.model_dump(mode="json", exclude_none=True)
            if hasattr(step, "model_dump")
            else dict(step)
        )
        turns.append(data)
    return turns


def chat_model(spec: str, base_url: str | None) -> Any:
    """A chat model from ``PROVIDER:MODEL`` (the factory judge checks get)."""
    from hazmat.agents.models import resolve_agent

    return resolve_agent(spec, base_url=base_url).make_model()


def _task_tools(rendered: RenderedTask) -> dict[str, Tool]:
    """Task-specific tools (``tools.py`` in the task folder, simulated users)."""
    task = rendered.task
    if not task.task_tools and task.user is None:
        return {}
    from hazmat.tools.task_tools import load_task_tools

    return load_task_tools(task, seed=rendered.seed, secrets=rendered.secrets)


def _watched_paths(policy: Policy) -> tuple[str, ...]:
    """The task's monitor/audit paths (``settings.watch`` of its policy), if any."""
    spec = getattr(policy, "spec", None)
    settings = getattr(spec, "settings", None)
    return tuple(getattr(settings, "watch", ()) or ())


def _instructions(task: Task, questions: QuestionState | None) -> str:
    """What the agent is told: the instructions, the hints, the user's opening, the
    questions (all of them, or the first in guided mode)."""
    text = task.instructions
    if task.hints:
        text += "\n\nHints:\n" + "\n".join(f"- {h}" for h in task.hints)
    if task.user is not None and task.user.opening and task.user.opening not in text:
        text += f"\n\nThe user's first message:\n{task.user.opening}"
    if questions is not None:
        text += "\n\n" + questions.intro()
    return text


def _agent_model(agent: Agent, rendered: RenderedTask) -> tuple[Any, SolutionScript | None]:
    """The episode's chat model; for the solution agent with captures, its script too."""
    if agent.kind == "solution" and any(s.capture for s in rendered.task.solution):
        from hazmat.agents.solution import CapturingSolutionModel

        script = SolutionScript(list(rendered.task.solution))
        return CapturingSolutionModel.of(script, label=agent.name), script
    return agent.make_model(_solution_turns(rendered)), None


async def play(
    rendered: RenderedTask,
    agent: Agent,
    sb: Sandbox,
    rec: EpisodeRecorder,
    tracker: MilestoneTracker,
    result: EpisodeResult,
    policy: Policy,
    retry: RetryPolicy | None,
    stop: asyncio.Event | None,
    monitors: bool,
) -> None:
    task = rendered.task
    lim = task.limits
    extra = _task_tools(rendered)
    questions = QuestionState(task.questions) if task.questions is not None else None
    if questions is not None:
        from hazmat.tools.answer import AnswerTool

        extra["answer"] = AnswerTool(questions, timeout=lim.tool_timeout)
    tools = make_tools(list(task.tools), extra=extra, timeout=lim.tool_timeout)
    trace: list[TraceStep] = []
    model, script = _agent_model(agent, rendered)
    every_step = any(m.every_step for m in task.milestones)
    services = sorted(task.sandbox.services)
    contacts_at_start = await accepted_connections(sb, services) if services else {}

    def ctx(with_sandbox: bool, submission: str | None = None) -> CheckContext:
        return CheckContext.make(
            task,
            make_model=chat_model,
            trace=trace,
            submission=submission,
            secrets=rendered.secrets,
            seed=rendered.seed,
            sandbox=sb if with_sandbox else None,
        )

    def emit_hits(hits: list[Any], at_end: bool = False) -> None:
        for h in hits:
            extra_fields = {"at_end": True} if at_end else {}
            rec.emit(
                "milestone",
                id=h.id,
                step=h.step,
                t=h.time,
                title=h.title,
                index=h.index,
                **extra_fields,
            )
        for sample in tracker.take_samples():
            rec.emit("note", kind="milestone_score", **sample.model_dump())

    async def on_step(step: StepRecord) -> bool:
        if step.output is None and step.decision.action in ("block", "halt"):
            result.refused.append(
                {
                    "step": step.step,
                    "tool": step.call.tool,
                    "action": step.decision.action,
                    "rules": [
                        m.rule for m in step.decision.rules if m.action == step.decision.action
                    ],
                }
            )
        if step.output is None:  # refused or malformed: in the trace, marked not executed
            trace.append(
                TraceStep(
                    step=step.step,
                    tool=step.call.tool,
                    args=step.call.args,
                    executed=False,
                    time=step.t,
                    output=step.malformed or step.decision.reason,
                )
            )
            return False
        trace.append(step.output.trace_step(step.step, step.call.args, time=step.t))
        if script is not None:
            for cap in script.observe(step.step, trace[-1].output):
                result.captures.append(
                    {"step": cap.step, "name": cap.name, "matched": cap.value is not None}
                )
                rec.emit(
                    "note",
                    kind="capture",
                    step=cap.step,
                    name=cap.name,
                    regex=cap.regex,
                    value=cap.value,
                    message=f"solution step {cap.step} captured {cap.name}"
                    if cap.value is not None
                    else f"solution step {cap.step}: capture {cap.name} did not match",
                )
        hits = await tracker.after_step(ctx(every_step, step.output.submission))
        emit_hits(hits)
        # with questions, the episode goes on until none is left open
        return tracker.completed and (questions is None or questions.settled)

    async def guide(steps: int) -> Guidance:
        assert questions is not None
        text, done = questions.after_steps(steps)
        for note in questions.notes:
            rec.emit("note", **{**note, "kind": f"question_{note['kind']}"})
        questions.notes.clear()
        if done:
            out_of_budget = (
                questions.guided
                and bool(questions.closed)
                and (questions.closed[-1] not in questions.answered)
            )
            if out_of_budget:
                rec.emit("limit", which="question_steps", question=questions.closed[-1])
                return Guidance(end=("limit", "question_steps"))
            return Guidance(end=("submitted", "every question was answered"))
        return Guidance(message=text)

    session = policy.session(secrets=rendered.secrets, hosts=declared_hosts(rendered.task))
    observe = None
    if monitors:
        from hazmat.policy.monitors import SandboxMonitor
        from hazmat.policy.monitors import observe as run_monitors

        monitor = SandboxMonitor(watch=_watched_paths(policy), secrets=rendered.secrets)
        await monitor.start(sb)

        async def observe(obs: Observation) -> tuple[Decision, list[dict[str, Any]]]:
            return await run_monitors(session, monitor, sb, obs)

    loop = EpisodeLoop(
        model=model,
        tools=tools,
        sandbox=sb,
        policy=session,
        emit=rec.emit,
        instructions=_instructions(task, questions),
        observe=observe,
        limits=LoopLimits(
            steps=lim.steps,
            seconds=lim.seconds,
            input_tokens=lim.input_tokens,
            output_tokens=lim.output_tokens,
        ),
        retry=retry,
        on_step=on_step,
        stop=stop,
        guide=guide if questions is not None else None,
    )
    outcome = await loop.run()
    result.reason, result.detail = outcome.reason, outcome.detail
    result.submission, result.steps = outcome.submission, outcome.steps
    result.malformed = outcome.malformed
    result.decisions, result.halt = outcome.decisions, outcome.halt
    result.input_tokens, result.output_tokens = outcome.input_tokens, outcome.output_tokens
    if outcome.reason == "error":
        result.error = outcome.detail
    if outcome.reason == "interrupted":
        return
    if services:
        contacts = contacts_since(contacts_at_start, await accepted_connections(sb, services))
        result.service_contacts = contacts
        rec.emit(
            "note",
            kind="service_contacts",
            contacts=contacts,
            message="TCP connections each service accepted during the episode",
        )
    # every check once more, now with the sandbox (the expensive ones)
    emit_hits(await tracker.finish(ctx(True, outcome.submission)), at_end=True)
    if outcome.reason == "submitted" and tracker.completed:
        result.detail = result.detail or "final milestone reached"

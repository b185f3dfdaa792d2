"""Re-police recorded runs: what would another policy have decided on the same trace?

::

    report = repolice_run(Path("runs/R"), "stricter.yaml")
    for ep in report.episodes:
        ep.first_halt_step, ep.recorded_halt_step, ep.differences

No sandbox and no model: every recorded tool call is fed to the new policy's
``before`` stage and every recorded result to its ``after`` stage, in the recorded
order, through one policy session per episode (so flow rules and repeat counters
see the episode as it happened). The episode's secrets are regenerated from its
task and seed (the task is loaded once per folder); when the task folder is gone
the episode is re-policed without secrets and a note says so.

The policy is applied as ``hazmat run --policy FILE`` would apply it: the file is
the base and the task's own ``policy:`` overrides go on top
(``task_overrides=False``: the file alone). ``ask`` rules act as ``block`` (nobody
is asked).

Calls are read whole (:func:`hazmat.replay.trace.load_call`: arguments over 4 KiB
are blob references in the events, resolved here). A call whose argument blob is
missing from the record is not re-policed; it is listed in ``unreadable`` and a
note says so (``hazmat verify`` names the missing blob).

Limits, stated in every report: a call the record shows blocked or halted never
ran, so its ``after`` stage cannot be evaluated; and the trace ends where the
recorded episode ended, so a laxer policy cannot show what would have come next.
Decisions after the new policy's first halt are still evaluated (and marked
``after_halt``) because they show everything the policy would flag in the trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from hazmat.errors import ConfigError, HazmatError
from hazmat.policy.base import Decision, Observation, Policy, PolicySession, ToolCall
from hazmat.replay.timeline import step_output
from hazmat.replay.trace import EpisodeTrace, RunTrace, load_run

__all__ = [
    "DecisionChange",
    "EpisodeRepolice",
    "PolicyResolver",
    "RepoliceReport",
    "repolice_episode",
    "repolice_run",
]


class DecisionChange(BaseModel):
    """One step and stage where the new policy decides otherwise than the record."""

    step: int
    stage: str
    tool: str
    recorded: str
    """Recorded action (``allow`` when no decision was recorded for the stage)."""
    recorded_rules: list[str] = Field(default_factory=list)
    new: str
    new_rules: list[str] = Field(default_factory=list)
    reason: str = ""
    after_halt: bool = False
    """The new policy had already halted the episode at an earlier step."""


class EpisodeRepolice(BaseModel):
    """The re-policing of one episode."""

    episode_id: str
    task_id: str
    agent: str
    steps: int
    recorded_end: str
    recorded_halt_step: int | None = None
    recorded_first_block_step: int | None = None
    first_block_step: int | None = None
    """First step the new policy blocks (or halts)."""
    first_halt_step: int | None = None
    halt_rule: str | None = None
    halt_reason: str | None = None
    differences: list[DecisionChange] = Field(default_factory=list)
    not_evaluated: list[int] = Field(default_factory=list)
    """Steps whose ``after`` stage could not be evaluated (the call never ran)."""
    unreadable: list[int] = Field(default_factory=list)
    """Steps not re-policed: their recorded arguments are in blobs missing from the record."""
    notes: list[str] = Field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line: where the new policy stops the episode, against the record."""
        if self.first_halt_step is not None:
            head = f"halts at step {self.first_halt_step} ({self.halt_rule})"
        elif self.first_block_step is not None:
            head = f"first blocks at step {self.first_block_step}"
        else:
            head = "no block or halt"
        rec = (
            f"recorded halt at step {self.recorded_halt_step}"
            if self.recorded_halt_step is not None
            else f"recorded end {self.recorded_end}"
        )
        return f"{head}; {rec}; {len(self.differences)} decision(s) differ"


class RepoliceReport(BaseModel):
    """The re-policing of a run (``hazmat replay RUN --policy FILE --json``)."""

    run_dir: str
    run_id: str
    policy: str
    episodes: list[EpisodeRepolice] = Field(default_factory=list)
    seconds: float = 0.0
    record_problems: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def changed(self) -> int:
        """Episodes with at least one differing decision (in ``--json`` too)."""
        return sum(1 for e in self.episodes if e.differences)


_ORDER = {"allow": 0, "log": 1, "ask": 2, "block": 3, "halt": 4}


class PolicyResolver:
    """Makes (and caches) the policy and the secrets for each recorded episode.

    Raises (from :meth:`policy_for` / :meth:`secrets_for`): nothing for a missing
    task (a note is returned instead); :class:`PolicyError` when the policy file
    does not load.
    """

    def __init__(self, policy: str | Path | Policy, *, task_overrides: bool = True) -> None:
        self.base: str | Policy = policy if not isinstance(policy, Path) else str(policy)
        self.task_overrides = task_overrides
        self._tasks: dict[str, Any] = {}
        self._policies: dict[str, Policy] = {}
        self._bare: Policy | None = None
        if isinstance(policy, str | Path):
            ref = str(policy)
            if ref not in ("default", "builtin:default"):
                path = Path(ref).expanduser()
                if not path.is_file():
                    raise ConfigError(f"--policy {ref}: no such file")
                self.base = str(path.resolve())
            self.label = ref
        else:
            self.label = str(getattr(policy, "name", type(policy).__name__))

    def task(self, root: str | None) -> Any:
        """The task loaded from ``root`` (cached), or None when it cannot be loaded."""
        if not root:
            return None
        if root not in self._tasks:
            from hazmat.tasks import load_task

            try:
                self._tasks[root] = load_task(Path(root))
            except (HazmatError, OSError):
                self._tasks[root] = None
        return self._tasks[root]

    def _load(self, ref: Any, base_dir: Path | None) -> Policy:
        from hazmat.policy.engine import load_policy

        return load_policy(ref, base_dir=base_dir)

    def policy_for(self, task: Any) -> Policy:
        """The policy for an episode of ``task`` (None: the base alone)."""
        if not isinstance(self.base, str):
            return self.base
        if task is None or not self.task_overrides or task.policy is None:
            if self._bare is None:
                self._bare = self._load(self.base, None)
            return self._bare
        key = str(task.root)
        if key not in self._policies:
            from hazmat.policy.compose import for_task

            self._policies[key] = for_task(task, self.base)  # as hazmat run composes it
        return self._policies[key]

    def session(
        self, policy: Policy, secrets: dict[str, str], hosts: list[str] | None = None
    ) -> PolicySession:
        """A quiet session that never asks a person (``ask`` acts as ``block``); ``hosts``
        are the task's declared hosts (None when the task is gone)."""
        from hazmat.policy.engine import no_terminal_asker

        session: PolicySession
        try:
            session = policy.session(secrets=secrets, asker=no_terminal_asker, hosts=hosts)  # type: ignore[call-arg]
        except TypeError:  # a policy of its own, with fewer session arguments
            try:
                session = policy.session(secrets=secrets, hosts=hosts)
            except TypeError:
                session = policy.session(secrets=secrets)
        if hasattr(session, "quiet"):
            session.quiet = True  # re-policing a corpus must not log every decision
        return session


def recorded_hosts(ep: EpisodeTrace, task: Any) -> list[str] | None:
    """The hosts the episode's sandbox declared (from its recorded spec), else the task's
    as it is now, else None (unknown)."""
    spec = (ep.ready or {}).get("spec")
    if isinstance(spec, dict):
        services = spec.get("services")
        allow = spec.get("allow_hosts")
        return [*(services if isinstance(services, dict) else {}),
                *(h for h in (allow if isinstance(allow, list) else []) if isinstance(h, str))]  # fmt: skip
    if task is not None:
        from hazmat.policy.compose import declared_hosts

        return declared_hosts(task)
    return None


def _rules(d: dict[str, Any] | Decision) -> list[str]:
    if isinstance(d, Decision):
        return sorted(m.rule for m in d.rules)
    return sorted(str(r.get("rule")) for r in d.get("rules") or [] if isinstance(r, dict))


def repolice_episode(run: RunTrace, ep: EpisodeTrace, resolver: PolicyResolver) -> EpisodeRepolice:
    """Feed one recorded episode's calls and results through the new policy.

    Raises:
        PolicyError: the policy does not load.
    """
    start = ep.start or {}
    out = EpisodeRepolice(
        episode_id=ep.episode_id,
        task_id=ep.task_id,
        agent=ep.agent,
        steps=len(ep.steps),
        recorded_end=ep.reason,
        recorded_halt_step=ep.halt_step,
    )
    for s in ep.steps:
        if s.action in ("block", "halt") and not s.malformed:
            out.recorded_first_block_step = s.step
            break
    task = resolver.task(start.get("task_root"))
    secrets: dict[str, str] = {}
    if task is None:
        out.notes.append("the task folder is gone or broken: re-policed without its secrets")
    elif ep.seed is not None:
        from hazmat.tasks import render_task

        secrets = dict(render_task(task, ep.seed).secrets)
    policy = resolver.policy_for(task)
    session = resolver.session(policy, secrets, recorded_hosts(ep, task))

    def note_decision(
        step: int, stage: str, tool: str, d: Decision, recorded: dict[str, Any] | None
    ) -> None:
        new_a = d.action
        if _ORDER.get(new_a, 0) >= _ORDER["block"] and out.first_block_step is None:
            out.first_block_step = step
        halted_before = out.first_halt_step is not None and out.first_halt_step < step
        if new_a == "halt" and out.first_halt_step is None:
            out.first_halt_step = step
            top = next((m for m in d.rules if m.action == "halt"), d.rules[0] if d.rules else None)
            out.halt_rule = top.rule if top else None
            out.halt_reason = d.reason
        rec_a = str(recorded.get("action", "allow")) if recorded else "allow"
        rec_r = _rules(recorded) if recorded else []
        new_r = _rules(d)
        if rec_a != new_a or rec_r != new_r:
            out.differences.append(
                DecisionChange(
                    step=step,
                    stage=stage,
                    tool=tool,
                    recorded=rec_a,
                    recorded_rules=rec_r,
                    new=new_a,
                    new_rules=new_r,
                    reason=d.reason,
                    after_halt=halted_before,
                )
            )

    for s in ep.steps:
        if s.malformed:
            continue  # refused by the gate before any policy saw it
        if s.missing:
            out.unreadable.append(s.step)
            out.notes.append(
                f"step {s.step}: its arguments are in blob(s) missing from the record "
                f"({', '.join(d[:16] + '...' for d in s.missing)}); not re-policed"
            )
            continue
        recorded = {str(d.get("stage")): d for d in s.decisions}
        call = ToolCall(id=s.call_id or f"step-{s.step}", tool=s.tool, args=s.args)
        note_decision(s.step, "before", s.tool, session.before(call), recorded.get("before"))
        if s.result is None:
            out.not_evaluated.append(s.step)
            continue
        r = s.result
        text, err = step_output(run, s)
        output = text + err if "stdout" in r else text
        code = r.get("exit_code")
        obs = Observation(
            call=call,
            exit_code=code if isinstance(code, int) else None,
            output=output,
            signals=list(s.signals),  # what the monitors saw, as the recorded stage had it
        )
        note_decision(s.step, "after", s.tool, session.after(obs), recorded.get("after"))
    return out


def repolice_run(
    run_dir: str | os.PathLike[str],
    policy: str | Path | Policy,
    *,
    task_overrides: bool = True,
    episodes: Iterable[str] | None = None,
    resolver: PolicyResolver | None = None,
) -> RepoliceReport:
    """Re-police every episode of a run (or those named) with ``policy``.

    ``policy`` is ``default``, a policy file, or a policy object.

    Raises:
        ConfigError: the policy file does not exist.
        PolicyError: the policy does not load.
        RecordError: the run cannot be read.
        ReplayError: a named episode is not in the run.
    """
    import time

    t0 = time.perf_counter()
    res = resolver or PolicyResolver(policy, task_overrides=task_overrides)
    run = load_run(Path(run_dir))
    report = RepoliceReport(run_dir=str(run_dir), run_id=run.run_id, policy=res.label)
    for p in run.problems[:5]:
        report.record_problems.append(f"line {p.line} ({p.kind}): {p.message}")
    chosen = (
        [run.episode(e) for e in episodes] if episodes is not None else list(run.episodes.values())
    )
    for ep in chosen:
        report.episodes.append(repolice_episode(run, ep, res))
    report.seconds = round(time.perf_counter() - t0, 4)
    return report

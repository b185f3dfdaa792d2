"""A recorded run read back as episodes, turns and steps: what show, replay and re-police read.

::

    run = load_run(Path("runs/2026-11-29T00-20-01_ab12cd"))
    ep = run.episode("ep0001")
    for turn in ep.turns:            # one model response each
        for step in turn.steps:      # one proposed tool call each (numbered like the record)
            step.decisions, step.result, step.milestones

Events are grouped by ``episode_id`` (episodes of a parallel run interleave in
``events.jsonl``). An episode that was run again (``hazmat run --resume``: a second
``episode_start`` under the same id) is read as its last attempt; the earlier ones
are counted in :attr:`EpisodeTrace.attempts`. The chain is checked while reading
(:func:`hazmat.record.chain.walk_chain`); its problems are kept, never raised, so a
damaged or interrupted record can still be shown up to its last event.

Recorded calls are read back whole: this module is the one place that loads them,
and it resolves their blobs (an argument over 4 KiB is stored as a blob reference in
the event). :attr:`Step.args` and :attr:`Turn.response` (the model's text and tool
calls) hold the full values, so show, re-policing and re-execution see exactly what
the agent proposed; blobs missing from the record are listed in ``missing``
(:attr:`Step.missing`, :attr:`Turn.missing`) and stand in as a marker text. The raw
events (:attr:`Step.call`, :attr:`Turn.event`) keep their references.
:meth:`RunTrace.text` turns an inline output or a blob reference into the full text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hazmat.errors import RecordError
from hazmat.record.chain import EVENTS_FILE, ChainProblem, load_blob, resolve_blobs, walk_chain
from hazmat.record.events import is_blob_ref
from hazmat.record.store import RUN_FILE, RunRecord, RunStore, writer_alive

__all__ = [
    "EpisodeTrace",
    "RunTrace",
    "Step",
    "Turn",
    "load_call",
    "load_run",
    "read_events",
    "run_status",
]


@dataclass
class Step:
    """One proposed tool call (``step`` as numbered in the record) and what became of it."""

    step: int
    tool: str
    args: dict[str, Any]
    """The call's arguments, whole (blob references resolved)."""
    call_id: str | None = None
    malformed: str | None = None
    turn: int | None = None
    call: dict[str, Any] | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """``policy_decision`` events of this step (``before`` then ``after``)."""
    result: dict[str, Any] | None = None
    """The ``tool_result`` event; None when the call never ran (blocked, halted, malformed)."""
    milestones: list[dict[str, Any]] = field(default_factory=list)
    """``milestone`` events reached right after this step (not the end-of-episode ones)."""
    signals: list[dict[str, Any]] = field(default_factory=list)
    """What the after-step monitors and the network sentinel saw (``signals`` events):
    the ``after`` stage decided on them, so re-policing needs them too."""
    notes: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Digests of argument blobs missing from the record (their text is a marker)."""

    @property
    def action(self) -> str:
        """The strictest recorded decision of the step (``allow`` when none was recorded)."""
        order = {"allow": 0, "log": 1, "ask": 2, "block": 3, "halt": 4}
        best = "allow"
        for d in self.decisions:
            a = str(d.get("action", "allow"))
            if order.get(a, 0) > order.get(best, 0):
                best = a
        if self.malformed and best == "allow":
            return "block"
        return best

    @property
    def executed(self) -> bool:
        """True when the tool ran (a result was recorded)."""
        return self.result is not None


@dataclass
class Turn:
    """One model response (a ``model_call`` event) and the steps it proposed."""

    turn: int
    event: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)
    """The recorded response, whole (blob references resolved): ``role, content,
    tool_calls, invalid_tool_calls?, reasoning?``."""
    missing: list[str] = field(default_factory=list)
    """Digests of response blobs missing from the record."""

    @property
    def nudges(self) -> list[str]:
        """Messages the harness sent the model before this turn (not tool outputs)."""
        out: list[str] = []
        new = self.event.get("messages_new")
        if not isinstance(new, list) or self.turn == 1:
            return out
        for m in new:
            if isinstance(m, dict) and m.get("role") in ("human", "user"):
                out.append(str(m.get("content", "")))
        return out


@dataclass
class EpisodeTrace:
    """One episode's events, arranged for reading."""

    episode_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    start: dict[str, Any] | None = None
    ready: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    turns: list[Turn] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    final_milestones: list[dict[str, Any]] = field(default_factory=list)
    """Milestones found by the end-of-episode checks (``at_end`` or no step)."""
    others: list[dict[str, Any]] = field(default_factory=list)
    """limit, error, model_error, note and unknown events, in order."""
    attempts: int = 1

    @property
    def task_id(self) -> str:
        """The task id from ``episode_start``."""
        return str((self.start or {}).get("task_id", ""))

    @property
    def agent(self) -> str:
        """The agent name from ``episode_start``."""
        return str((self.start or {}).get("agent", ""))

    @property
    def seed(self) -> int | None:
        """The episode seed from ``episode_start``."""
        s = (self.start or {}).get("seed")
        return s if isinstance(s, int) else None

    @property
    def ended(self) -> bool:
        """True when ``episode_end`` was recorded."""
        return self.end is not None

    @property
    def reason(self) -> str:
        """The end reason, or ``interrupted`` when the record stops before the end."""
        if self.end is None:
            return "interrupted"
        return str(self.end.get("reason", "error"))

    @property
    def halt(self) -> dict[str, Any] | None:
        """The first halting ``policy_decision`` event, or None."""
        for s in self.steps:
            for d in s.decisions:
                if d.get("action") == "halt":
                    return d
        return None

    @property
    def halt_step(self) -> int | None:
        """The step the policy halted at, or None."""
        h = self.halt
        return h.get("step") if h is not None and isinstance(h.get("step"), int) else None

    def step(self, n: int) -> Step | None:
        """Step ``n`` (1-based, as in the record), or None."""
        for s in self.steps:
            if s.step == n:
                return s
        return None


@dataclass
class RunTrace:
    """A run directory read back: its run.json (when readable), episodes and chain state."""

    path: Path
    run_id: str
    record: RunRecord | None
    episodes: dict[str, EpisodeTrace]
    problems: list[ChainProblem]
    torn_line: int | None
    last_seq: int | None
    run_start: dict[str, Any] | None
    run_end: dict[str, Any] | None
    live: bool = False

    @property
    def status(self) -> str:
        """``complete``, ``interrupted`` or ``running`` (a live writer)."""
        if self.run_end is not None:
            return str(self.run_end.get("status", "complete"))
        return "running" if self.live else "interrupted"

    @property
    def config(self) -> dict[str, Any]:
        """The run's configuration (``run_start`` event, else run.json)."""
        if self.run_start is not None and isinstance(self.run_start.get("config"), dict):
            cfg: dict[str, Any] = self.run_start["config"]
            return cfg
        return dict(self.record.config) if self.record else {}

    @property
    def parent_run(self) -> str | None:
        """The run this one replays, when it is a replay."""
        if self.run_start is not None and self.run_start.get("parent_run"):
            return str(self.run_start["parent_run"])
        return self.record.parent_run if self.record else None

    def episode(self, episode_id: str) -> EpisodeTrace:
        """The episode with this id.

        Raises:
            ConfigError: no such episode in the record (bad input: exit 2).
        """
        from hazmat.errors import ConfigError

        try:
            return self.episodes[episode_id]
        except KeyError:
            known = ", ".join(self.episodes) or "none"
            raise ConfigError(
                f"run {self.run_id} has no episode {episode_id!r}", hint=f"episodes: {known}"
            ) from None

    def text(self, value: Any) -> str:
        """An inline string or a blob reference as the full text ('' for None).

        A missing blob reads as a marker line rather than raising: show must work
        on damaged records (``hazmat verify`` says what is missing).
        """
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if is_blob_ref(value):
            try:
                return load_blob(self.path, value["blob"]).decode("utf-8", "replace")
            except RecordError:
                return f"[blob {value['blob'][:16]}... is missing from the record]"
        return str(value)


def read_events(run_dir: Path) -> tuple[list[dict[str, Any]], list[ChainProblem], int | None]:
    """The events of ``run_dir/events.jsonl`` (chain checked), its problems and torn line.

    Raises:
        RecordError: the file cannot be read.
    """
    walk = walk_chain(Path(run_dir) / EVENTS_FILE)
    return walk.events, walk.problems, walk.torn_line


def run_status(record: RunRecord | None, run_dir: Path) -> str:
    """``complete``, ``interrupted`` or ``running``: a ``running`` run.json whose writer is
    gone is ``interrupted``."""
    if record is None:
        return "unreadable"
    if record.status == "running":
        return "running" if writer_alive(run_dir) else "interrupted"
    return record.status


def load_run(run_dir: str | Path) -> RunTrace:
    """Read a run directory: run.json (if readable) and every event, grouped by episode.

    Raises:
        RecordError: neither run.json nor events.jsonl is there, or events.jsonl
            cannot be read.
    """
    path = Path(run_dir)
    if not (path / EVENTS_FILE).is_file() and not (path / RUN_FILE).is_file():
        raise RecordError(f"{path}: not a run directory (no events.jsonl or run.json)")
    record: RunRecord | None
    try:
        record = RunStore.open(path).record
    except RecordError:
        record = None
    events, problems, torn = read_events(path)
    run_start = next((e for e in events if e.get("event") == "run_start"), None)
    # the run id the chain carries (run.json is checked against it by verify, not trusted)
    start_id = run_start.get("run_id") if run_start is not None else None
    run_id = start_id if isinstance(start_id, str) else record.run_id if record else path.name
    run_end = next((e for e in reversed(events) if e.get("event") == "run_end"), None)
    episodes: dict[str, EpisodeTrace] = {}
    for ev in events:
        eid = ev.get("episode_id")
        if not isinstance(eid, str):
            continue
        if ev.get("event") == "episode_start" and eid in episodes:
            attempts = episodes[eid].attempts + 1
            episodes[eid] = EpisodeTrace(episode_id=eid, attempts=attempts)
        ep = episodes.setdefault(eid, EpisodeTrace(episode_id=eid))
        ep.events.append(ev)
    for ep in episodes.values():
        _arrange(ep, path)
    last_seq = events[-1].get("seq") if events else None
    return RunTrace(
        path=path,
        run_id=run_id,
        record=record,
        episodes=episodes,
        problems=problems,
        torn_line=torn,
        last_seq=last_seq if isinstance(last_seq, int) else None,
        run_start=run_start,
        run_end=run_end,
        live=writer_alive(path) if run_end is None else False,
    )


def load_call(run_dir: Path, value: Any) -> tuple[Any, list[str]]:
    """A recorded value (tool call arguments, a model response) with its blobs resolved.

    Returns the value and the digests of blobs missing from the record (a marker
    text stands in for each). Every reader of recorded calls goes through this.
    """
    missing: list[str] = []
    return resolve_blobs(run_dir, value, missing=missing), missing


def _arrange(ep: EpisodeTrace, run_dir: Path) -> None:
    """Fold an episode's events into turns and steps (recorded calls read whole)."""
    by_step: dict[int, Step] = {}
    by_call: dict[str, Step] = {}
    turn: Turn | None = None
    call_turn: dict[str, int] = {}

    def step_for(ev: dict[str, Any]) -> Step | None:
        n = ev.get("step")
        if isinstance(n, int) and n in by_step:
            return by_step[n]
        cid = ev.get("call_id") or ev.get("id")
        if isinstance(cid, str) and cid in by_call:
            return by_call[cid]
        return None

    for ev in ep.events:
        name = ev.get("event")
        if name == "episode_start":
            ep.start = ev
        elif name == "sandbox_ready":
            ep.ready = ev
        elif name == "episode_end":
            ep.end = ev
        elif name == "model_call":
            raw = ev.get("response")
            resp, missing = load_call(run_dir, raw) if isinstance(raw, dict) else ({}, [])
            turn = Turn(turn=len(ep.turns) + 1, event=ev, response=resp, missing=missing)
            ep.turns.append(turn)
            calls = list(resp.get("tool_calls") or [])
            calls += list(resp.get("invalid_tool_calls") or [])
            for c in calls:
                if isinstance(c, dict) and c.get("id"):
                    call_turn[str(c["id"])] = turn.turn
        elif name == "tool_call":
            n = ev.get("step")
            cid = ev.get("call_id") or ev.get("id")
            args, missing = load_call(run_dir, ev.get("args"))
            st = Step(
                step=n if isinstance(n, int) else len(ep.steps) + 1,
                tool=str(ev.get("tool", "")),
                args=args if isinstance(args, dict) else {},
                missing=missing,
                call_id=str(cid) if cid is not None else None,
                malformed=str(ev["malformed"]) if ev.get("malformed") else None,
                call=ev,
            )
            st.turn = call_turn.get(st.call_id or "", turn.turn if turn else None)
            by_step[st.step] = st
            if st.call_id:
                by_call[st.call_id] = st
            ep.steps.append(st)
            owner = ep.turns[st.turn - 1] if st.turn and st.turn <= len(ep.turns) else turn
            if owner is not None:
                owner.steps.append(st)
        elif name == "policy_decision":
            s = step_for(ev)
            if s is not None:
                s.decisions.append(ev)
            else:
                ep.others.append(ev)
        elif name == "tool_result":
            s = step_for(ev)
            if s is not None:
                s.result = ev
            else:
                ep.others.append(ev)
        elif name == "signals":
            s = step_for(ev)
            if s is not None and isinstance(ev.get("signals"), list):
                s.signals.extend(x for x in ev["signals"] if isinstance(x, dict))
            else:
                ep.others.append(ev)
        elif name == "milestone":
            s = step_for(ev) if not ev.get("at_end") else None
            if s is not None:
                s.milestones.append(ev)
            else:
                ep.final_milestones.append(ev)
        else:
            ep.others.append(ev)
    ep.steps.sort(key=lambda s: s.step)

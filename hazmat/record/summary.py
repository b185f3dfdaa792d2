"""run.json as a function of the events: the one derivation writers and readers share.

Everything in ``run.json`` except the seal copy (``sealed_hash``, ``sealed_seq``,
checked against the seal log by verify) is derived from ``events.jsonl``:

- ``run_id, created, config, tasks, agents, parent_run`` from ``run_start``;
- ``status``: ``running`` until ``run_end`` (its ``status``), ``running`` again after a
  ``note`` of kind ``resumed``;
- ``updated``: the ``ts`` of the last event folded in;
- one :class:`~hazmat.record.store.EpisodeRecord` per episode id, in the order the
  episodes first started (a re-run replaces the summary of its earlier attempt):
  task, agent, epoch, seed and start time from ``episode_start``; milestones,
  decision counts, the first halt (step, stage, rule, evidence, reason), tokens,
  ``limit_hit`` and ``error`` from the events in between; end reason, progress,
  depth, steps, duration and end time from ``episode_end``.

:class:`RunSummary` folds events one at a time (the :class:`~hazmat.record.log.Recorder`
keeps one and writes ``run.json`` from it after each *save point*);
:func:`derive_run_record` folds a list; :func:`load_run_record` reads a run directory's
events and folds them (what ``report`` and ``show`` read, so they show what verify
checks); :func:`diff_records` says where a ``run.json`` differs from the derivation.

Save points (:func:`is_save_point`): ``run_start``, ``episode_start``, ``episode_end``,
``run_end`` and the ``resumed`` note. The Recorder rewrites run.json after each of
them, so a run.json always equals the derivation at some save point: the last one, or
for a writer killed between an event and its run.json write, the one before.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from hazmat.errors import RecordError
from hazmat.record.chain import EVENTS_FILE, walk_chain
from hazmat.record.events import (
    EPISODE_END,
    EPISODE_START,
    ERROR,
    LIMIT,
    MILESTONE,
    MODEL_CALL,
    NOTE,
    POLICY_DECISION,
    RUN_END,
    RUN_START,
)
from hazmat.record.store import EpisodeRecord, Halt, MilestoneHit, RunRecord

__all__ = [
    "FORMAT",
    "LEGACY_UNCHECKED",
    "RESUMED_KIND",
    "UNDERIVED_KEYS",
    "EpisodeTally",
    "RunSummary",
    "derive_run_record",
    "diff_records",
    "is_save_point",
    "load_run_record",
]

RESUMED_KIND: Final = "resumed"
"""``kind`` of the note a resumed Recorder writes first (the run is ``running`` again)."""

UNDERIVED_KEYS: Final = frozenset({"sealed_hash", "sealed_seq"})
"""run.json keys not derived from the events (the seal copy; verify checks it apart)."""

FORMAT: Final = 2
"""run.json's ``format`` when it is derived from the events."""

LEGACY_UNCHECKED: Final = ("created", "updated", "format", "halt.stage", "halt.reason")
"""What a format-1 run.json (written before run.json was derived) could not match: its
own timestamps, and halt fields it did not have. Everything else is compared."""

_SAVE_EVENTS: Final = frozenset({RUN_START, EPISODE_START, EPISODE_END, RUN_END})
_END_REASONS: Final = ("submitted", "completed", "limit", "halted", "error")


def is_save_point(ev: Mapping[str, Any]) -> bool:
    """True for the events after which the Recorder rewrites run.json."""
    name = ev.get("event")
    return name in _SAVE_EVENTS or (name == NOTE and ev.get("kind") == RESUMED_KIND)


class EpisodeTally:
    """Folds events into per-episode :class:`EpisodeRecord` summaries."""

    def __init__(self) -> None:
        self.episodes: dict[str, EpisodeRecord] = {}
        self._model_calls: dict[str, int] = {}

    def apply(self, ev: Mapping[str, Any]) -> EpisodeRecord | None:
        """Fold one event in; returns the episode summary it changed (or None)."""
        eid = ev.get("episode_id")
        name = ev.get("event")
        if not isinstance(eid, str):
            return None
        if name == EPISODE_START:
            seed = ev.get("seed")
            epoch = ev.get("epoch")
            rec = EpisodeRecord(
                episode_id=eid,
                task_id=str(ev.get("task_id", "")),
                agent=str(ev.get("agent", "")),
                epoch=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0,
                seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                started=str(ev.get("ts")) if ev.get("ts") else None,
            )
            self.episodes[eid] = rec  # a re-run replaces its earlier attempt, in place
            self._model_calls[eid] = 0
            return rec
        rec_or_none = self.episodes.get(eid)
        if rec_or_none is None:
            return None
        rec = rec_or_none
        if name == MILESTONE:
            rec.milestones.append(
                MilestoneHit(
                    id=str(ev.get("id")),
                    step=_int_or_none(ev.get("step")),
                    t=_num(ev["t"]) if _is_num(ev.get("t")) else None,
                )
            )
        elif name == POLICY_DECISION:
            action = str(ev.get("action"))
            rec.decisions[action] = rec.decisions.get(action, 0) + 1
            if action == "halt" and rec.halt is None:
                rule, evidence = _halting_rule(ev)
                stage, reason = ev.get("stage"), ev.get("reason")
                rec.halt = Halt(
                    step=_int_or_none(ev.get("step")),
                    stage=stage if isinstance(stage, str) else None,
                    rule=rule,
                    evidence=evidence,
                    reason=reason if isinstance(reason, str) else None,
                )
        elif name == MODEL_CALL:
            self._model_calls[eid] = self._model_calls.get(eid, 0) + 1
            usage = ev.get("usage")
            if isinstance(usage, dict):
                rec.tokens.input += _int(
                    usage.get("input_tokens", usage.get("prompt_tokens", usage.get("input")))
                )
                rec.tokens.output += _int(
                    usage.get("output_tokens", usage.get("completion_tokens", usage.get("output")))
                )
        elif name == LIMIT:
            rec.limit_hit = str(ev.get("which"))
        elif name == ERROR:
            rec.error = str(ev.get("message"))
        elif name == EPISODE_END:
            reason = ev.get("reason")
            rec.status = reason if reason in _END_REASONS else "error"
            rec.progress = _num(ev.get("progress"))
            depth = ev.get("depth")
            rec.depth = depth if isinstance(depth, str) else None
            steps = _int_or_none(ev.get("steps"))
            rec.steps = steps if steps else self._model_calls.get(eid, 0)
            if isinstance(ev.get("limit_hit"), str):
                rec.limit_hit = ev["limit_hit"]
            if isinstance(ev.get("error"), str):
                rec.error = ev["error"]
            duration = ev.get("duration")
            rec.duration = _num(duration) if _is_num(duration) else _span(rec.started, ev)
            rec.ended = str(ev.get("ts")) if ev.get("ts") else None
        else:
            return None
        return rec


class RunSummary:
    """The run summary folded from events one at a time (see the module docs)."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self.tally = EpisodeTally()
        self.created: str | None = None
        self.updated: str | None = None
        self.status = "running"
        self.config: dict[str, Any] = {}
        self.tasks: list[str] = []
        self.agents: list[str] = []
        self.parent_run: str | None = None

    @property
    def episodes(self) -> dict[str, EpisodeRecord]:
        """The episode summaries by id (live objects: do not change them)."""
        return self.tally.episodes

    def apply(self, ev: Mapping[str, Any]) -> bool:
        """Fold one event in; True when it is a save point (run.json is rewritten)."""
        name = ev.get("event")
        ts = ev.get("ts")
        if isinstance(ts, str):
            self.updated = ts
        if name == RUN_START:
            if self.run_id is None and isinstance(ev.get("run_id"), str):
                self.run_id = ev["run_id"]
            self.created = ts if isinstance(ts, str) else None
            config = ev.get("config")
            self.config = copy.deepcopy(config) if isinstance(config, dict) else {}
            self.tasks = [str(t) for t in ev.get("tasks") or [] if t is not None]
            self.agents = [str(a) for a in ev.get("agents") or [] if a is not None]
            parent = ev.get("parent_run")
            self.parent_run = parent if isinstance(parent, str) else None
        elif name == RUN_END:
            status = ev.get("status")
            self.status = status if status in ("complete", "interrupted") else "complete"
        elif name == NOTE and ev.get("kind") == RESUMED_KIND:
            self.status = "running"
        else:
            self.tally.apply(ev)
        return is_save_point(ev)

    def dump(self) -> dict[str, Any]:
        """The summary as run.json's JSON data (fresh objects, safe to keep)."""
        return {
            "format": FORMAT,
            "run_id": self.run_id or "",
            "created": self.created or "",
            "updated": self.updated or "",
            "status": self.status,
            "config": copy.deepcopy(self.config),
            "tasks": list(self.tasks),
            "agents": list(self.agents),
            "episodes": [e.model_dump(mode="json") for e in self.tally.episodes.values()],
            "parent_run": self.parent_run,
            "sealed_hash": None,
            "sealed_seq": None,
        }

    def record(self) -> RunRecord:
        """The summary as a :class:`RunRecord` (a copy)."""
        return RunRecord.model_validate(self.dump())


def derive_run_record(
    events: Iterable[Mapping[str, Any]], *, run_id: str | None = None
) -> RunRecord:
    """What run.json must say, given a run's events (in chain order).

    ``sealed_hash``/``sealed_seq`` are None: the seal is not derived from the events.
    """
    summary = RunSummary(run_id)
    for ev in events:
        summary.apply(ev)
    return summary.record()


def load_run_record(run_dir: str | os.PathLike[str], *, strict: bool = True) -> RunRecord:
    """The run summary of a run directory, derived from its ``events.jsonl`` alone.

    This is what ``report`` and ``show`` should read instead of trusting run.json:
    it is exactly what ``hazmat verify`` checks run.json against. A torn last line
    (an interrupted writer) is skipped.

    Raises :class:`RecordError` when the events cannot be read, hold no event, or
    (``strict``, the default) the hash chain is broken.
    """
    path = Path(run_dir)
    walk = walk_chain(path / EVENTS_FILE)
    if strict and walk.problems:
        p = walk.problems[0]
        raise RecordError(
            f"{path}: the record does not verify at line {p.line} ({p.kind}): {p.message}",
            hint=f"run `hazmat verify {path}`",
        )
    if not walk.events:
        raise RecordError(f"{path}: no events recorded", hint="is this a run directory?")
    return derive_run_record(walk.events)


def diff_records(
    want: Mapping[str, Any], have: Mapping[str, Any], *, legacy: bool = False
) -> list[tuple[str | None, str]]:
    """Where run.json data ``have`` differs from the derivation ``want`` (JSON dicts).

    Returns ``(episode_id or None, what differs)`` pairs, e.g. ``("ep1", "halt.rule:
    run.json says 'x', the events say 'y'")``. Episodes are matched by id (order
    counts too); the seal copy (:data:`UNDERIVED_KEYS`) is not compared. ``legacy``
    (a format-1 run.json) leaves out :data:`LEGACY_UNCHECKED` and the episode order.
    """
    out: list[tuple[str | None, str]] = []
    top: list[str] = []
    skip = set(UNDERIVED_KEYS) | {"episodes"} | (set(LEGACY_UNCHECKED) if legacy else set())
    w = {k: v for k, v in want.items() if k not in skip}
    h = {k: v for k, v in have.items() if k not in skip}
    _diff(w, h, "", top)
    out.extend((None, line) for line in top)
    w_eps = _by_id(want.get("episodes"))
    h_eps = _by_id(have.get("episodes"))
    for eid, we in w_eps.items():
        he = h_eps.get(eid)
        if he is None:
            out.append((eid, "not in run.json, the events start it"))
            continue
        if legacy and isinstance(we, dict) and isinstance(he, dict):
            we, he = _without_new_halt_fields(we), _without_new_halt_fields(he)
        lines: list[str] = []
        _diff(we, he, "", lines)
        out.extend((eid, line) for line in lines)
    for eid in h_eps:
        if eid not in w_eps:
            out.append((eid, "in run.json, but no episode_start in the events"))
    if not out and not legacy and list(w_eps) != list(h_eps):
        out.append((None, f"episodes: run.json lists {list(h_eps)}, the events {list(w_eps)}"))
    return out


def _without_new_halt_fields(ep: dict[str, Any]) -> dict[str, Any]:
    halt = ep.get("halt")
    if not isinstance(halt, dict):
        return ep
    return {**ep, "halt": {k: v for k, v in halt.items() if k not in ("stage", "reason")}}


def _by_id(episodes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, e in enumerate(episodes if isinstance(episodes, list) else []):
        key = e.get("episode_id") if isinstance(e, dict) else None
        out[str(key) if key is not None else f"#{i}"] = e
    return out


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


def _diff(want: Any, have: Any, path: str, out: list[str]) -> None:
    if isinstance(want, dict) and isinstance(have, dict):
        for k in list(want) + [k for k in have if k not in want]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in have:
                out.append(f"{sub}: missing in run.json, the events say {_short(want[k])}")
            elif k not in want:
                out.append(f"{sub}: run.json says {_short(have[k])}, the events have no such field")
            else:
                _diff(want[k], have[k], sub, out)
        return
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for i, (a, b) in enumerate(zip(want, have, strict=True)):
            _diff(a, b, f"{path}[{i}]", out)
        return
    if type(want) is not type(have) or want != have:
        out.append(
            f"{path or '(run.json)'}: run.json says {_short(have)}, the events say {_short(want)}"
        )


def _halting_rule(ev: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(rule id, evidence) of a halt decision: the first rule whose action is halt."""
    rules = ev.get("rules")
    evidence = ev.get("evidence")
    if not isinstance(rules, list) or not rules:
        return None, evidence if evidence is not None else ev.get("reason")
    dicts = [r for r in rules if isinstance(r, dict)]
    if not dicts:
        return str(rules[0]), evidence
    top = next((r for r in dicts if r.get("action") == "halt"), dicts[0])
    rule = top.get("rule") or top.get("id")
    if evidence is None:
        evidence = top.get("evidence") or ev.get("reason")
    return (str(rule) if rule is not None else None), evidence


def _span(started: str | None, ev: Mapping[str, Any]) -> float | None:
    ts = ev.get("ts")
    if not started or not isinstance(ts, str):
        return None
    try:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((b - a).total_seconds(), 6)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _num(v: Any) -> float:
    return float(v) if _is_num(v) else 0.0

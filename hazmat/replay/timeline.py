"""The terminal timeline of a recorded run (``hazmat show``) and the run listing (``hazmat runs``).

:func:`select_steps` applies the filters (one step, one tool, decisions only, the
steps around a halt); :func:`episode_renderables` turns one episode into rich
renderables: each turn's model message (and reasoning), each step's tool call with
its arguments whole (blobs resolved by :mod:`hazmat.replay.trace`), policy decisions with their rules and evidence, the full output (blobs resolved;
outputs that were cut for the model are shown whole), milestones, and the halt.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from hazmat.errors import RecordError
from hazmat.record.store import list_runs
from hazmat.record.summary import load_run_record
from hazmat.replay.trace import EpisodeTrace, RunTrace, Step, Turn

__all__ = [
    "ShowFilter",
    "episode_renderables",
    "run_renderables",
    "runs_rows",
    "select_steps",
    "step_output",
]

ACTION_STYLE = {
    "allow": "green",
    "log": "cyan",
    "ask": "magenta",
    "block": "yellow",
    "halt": "bold red",
}
REASON_STYLE = {
    "halted": "bold red",
    "error": "magenta",
    "limit": "yellow",
    "interrupted": "yellow",
    "completed": "green",
    "submitted": "green",
}


@dataclass(frozen=True)
class ShowFilter:
    """What part of a timeline to show. All None/False: everything."""

    step: int | None = None
    tool: str | None = None
    decisions_only: bool = False
    around_halt: int | None = None

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return (
            self.step is not None
            or self.tool is not None
            or self.decisions_only
            or self.around_halt is not None
        )


def select_steps(ep: EpisodeTrace, filt: ShowFilter) -> list[Step]:
    """The steps of ``ep`` that pass ``filt`` (in order).

    ``decisions_only`` keeps steps whose policy decision was not a plain allow
    (log, block, halt, or any matched rule) and malformed calls;
    ``around_halt=K`` keeps steps within K of the halt (none when the episode
    was not halted).
    """
    steps = list(ep.steps)
    if filt.step is not None:
        steps = [s for s in steps if s.step == filt.step]
    if filt.tool is not None:
        steps = [s for s in steps if s.tool == filt.tool]
    if filt.decisions_only:
        steps = [
            s
            for s in steps
            if s.malformed or s.action != "allow" or any(d.get("rules") for d in s.decisions)
        ]
    if filt.around_halt is not None:
        h = ep.halt_step
        steps = [] if h is None else [s for s in steps if abs(s.step - h) <= filt.around_halt]
    return steps


def step_output(run: RunTrace, step: Step) -> tuple[str, str]:
    """The full stdout (or the tool's text) and stderr of a step (blobs resolved)."""
    r = step.result
    if r is None:
        return "", ""
    if "stdout" in r or "stderr" in r:
        return run.text(r.get("stdout")), run.text(r.get("stderr"))
    return run.text(r.get("text")), ""


def _kv(label: str, value: Any, style: str = "") -> Text:
    t = Text()
    t.append(f"{label}: ", style="dim")
    t.append(str(value), style=style)
    return t


def _header(run: RunTrace, ep: EpisodeTrace) -> RenderableType:
    start = ep.start or {}
    ready = ep.ready or {}
    end = ep.end or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column()
    reason = ep.reason
    detail = end.get("detail") or end.get("error") or ""
    grid.add_row(_kv("task", ep.task_id, "bold"), _kv("agent", ep.agent))
    grid.add_row(_kv("seed", ep.seed), _kv("epoch", start.get("epoch", 0)))
    grid.add_row(
        _kv("backend", ready.get("backend") or start.get("backend", "?")),
        _kv("image", ready.get("image_id") or (ready.get("info") or {}).get("image", "-")),
    )
    grid.add_row(
        _kv("end", f"{reason}" + (f" ({detail})" if detail else ""), REASON_STYLE.get(reason, "")),
        _kv(
            "progress",
            f"{float(end.get('progress', 0) or 0):.2f}"
            + (f"  depth {end.get('depth')}" if end.get("depth") else ""),
        ),
    )
    grid.add_row(_kv("steps", len(ep.steps)), _kv("duration", f"{end.get('duration', '-')}s"))
    if ready.get("environment"):  # the hash replay and doctor name (see hazmat.sandbox.rootfs)
        grid.add_row(_kv("environment", ready["environment"]), Text())
    if ep.attempts > 1:
        grid.add_row(_kv("attempts", f"{ep.attempts} (showing the last)", "yellow"), Text())
    title = f"episode {ep.episode_id}"
    style = "red" if reason == "halted" else "yellow" if reason == "interrupted" else "blue"
    return Panel(grid, title=title, title_align="left", border_style=style)


def _model_message(turn: Turn) -> list[RenderableType]:
    out: list[RenderableType] = []
    resp = turn.response
    for nudge in turn.nudges:
        out.append(Text.assemble(("  harness → model: ", "dim"), (nudge, "dim italic")))
    head = Text.assemble((f"turn {turn.turn}", "bold blue"), ("  model", "blue"))
    usage = turn.event.get("usage")
    if isinstance(usage, dict) and usage.get("input_tokens") is not None:
        head.append(
            f"  ({usage.get('input_tokens')} in / {usage.get('output_tokens')} out tokens)",
            style="dim",
        )
    out.append(head)
    reasoning = resp.get("reasoning")
    if reasoning:
        out.append(Text("  reasoning: ", style="dim") + Text(str(reasoning), style="italic dim"))
    content = resp.get("content")
    if isinstance(content, list):
        content = "\n".join(
            str(c.get("text", c)) if isinstance(c, dict) else str(c) for c in content
        )
    if content:
        out.append(Text("  ") + Text(str(content)))
    for bad in resp.get("invalid_tool_calls") or []:
        if isinstance(bad, dict):
            out.append(
                Text(
                    f"  invalid tool call {bad.get('name')!s}: {bad.get('args')!s}", style="yellow"
                )
            )
    return out


def _call_text(step: Step) -> Text:
    t = Text()
    t.append(f"step {step.step}", style="bold")
    t.append(f"  {step.tool}", style="bold cyan")
    args = dict(step.args)
    if step.tool in ("bash", "python") and isinstance(args.get("command", args.get("code")), str):
        body = str(args.pop("command", None) or args.pop("code", ""))
        prompt = "$ " if step.tool == "bash" else ">>> "
        t.append("\n  ")
        t.append(prompt, style="dim")
        t.append(body.replace("\n", "\n    "))
    # arguments are shown whole (blobs resolved): a payload after padding stays visible
    blocks = {k: v for k, v in args.items() if isinstance(v, str) and ("\n" in v or len(v) > 200)}
    rest = {k: v for k, v in args.items() if k not in blocks}
    if rest:
        t.append("\n  ")
        t.append(json.dumps(rest, ensure_ascii=False, sort_keys=True), style="dim")
    for key, text in sorted(blocks.items()):
        t.append(f"\n  {key}: ", style="dim")
        t.append(f"({len(text.encode())} bytes)", style="dim")
        t.append("\n    " + text.replace("\n", "\n    "))
    return t


def _decision(d: dict[str, Any]) -> RenderableType:
    action = str(d.get("action", "allow"))
    t = Text("  ")
    t.append(f"policy {d.get('stage', '')}: ", style="dim")
    t.append(action.upper(), style=ACTION_STYLE.get(action, ""))
    if d.get("reason"):
        t.append(f"  {d['reason']}")
    lines: list[RenderableType] = [t]
    for r in d.get("rules") or []:
        if not isinstance(r, dict):
            continue
        rt = Text("    ")
        rt.append(f"{r.get('rule')}", style="bold")
        rt.append(
            f" [{r.get('action')}, {r.get('severity', 'info')}]",
            style=ACTION_STYLE.get(str(r.get("action")), ""),
        )
        if r.get("title"):
            rt.append(f" {r['title']}")
        if r.get("evidence"):
            rt.append("\n      evidence: ", style="dim")
            rt.append(str(r["evidence"]))
        lines.append(rt)
    return Group(*lines)


def _result(run: RunTrace, step: Step) -> list[RenderableType]:
    r = step.result
    if r is None:
        if step.malformed:
            return [Text(f"  not run: {step.malformed}", style="yellow")]
        return [Text("  not run", style="yellow")]
    out, err = step_output(run, step)
    head = Text("  ")
    if r.get("exit_code") is not None:
        code = r.get("exit_code")
        head.append(f"exit {code}", style="green" if code == 0 else "red")
    elif r.get("is_error"):
        head.append("error", style="red")
    else:
        head.append("ok", style="green")
    if r.get("duration") is not None:
        head.append(f"  {r.get('duration')}s", style="dim")
    if r.get("timed_out"):
        head.append("  timed out", style="red")
    if r.get("truncated"):
        head.append("  output over the sandbox cap (the rest was dropped)", style="yellow")
    if r.get("cut_for_model"):
        head.append(
            f"  (the model saw it cut by {r['cut_for_model']} bytes; shown whole here)",
            style="yellow",
        )
    if r.get("submission") is not None:
        head.append(f"  submitted: {r['submission']}", style="bold")
    items: list[RenderableType] = [head]
    if out:
        items.append(
            Panel(
                Text(out.rstrip("\n")),
                title="stdout" if "stdout" in r else "output",
                title_align="left",
                border_style="dim",
                padding=(0, 1),
            )
        )
    if err:
        items.append(
            Panel(
                Text(err.rstrip("\n")),
                title="stderr",
                title_align="left",
                border_style="red dim",
                padding=(0, 1),
            )
        )
    if r.get("data"):
        items.append(
            Text("  data: " + json.dumps(r["data"], ensure_ascii=False)[:4000], style="dim")
        )
    return items


def _milestone(m: dict[str, Any]) -> Text:
    t = Text("  ★ milestone ", style="bold green")
    t.append(str(m.get("id")), style="bold green")
    if m.get("title"):
        t.append(f": {m['title']}")
    if m.get("at_end"):
        t.append("  (found by the end-of-episode checks)", style="dim")
    return t


def _halt_panel(ep: EpisodeTrace) -> RenderableType | None:
    h = ep.halt
    if h is None:
        return None
    rules = [r for r in h.get("rules") or [] if isinstance(r, dict)]
    top = next((r for r in rules if r.get("action") == "halt"), rules[0] if rules else {})
    body = Text()
    body.append(f"step {h.get('step')} ({h.get('stage')}): ", style="bold")
    body.append(str(h.get("reason") or ""))
    if top:
        body.append(f"\nrule: {top.get('rule')} [{top.get('severity', '')}] {top.get('title', '')}")
        if top.get("evidence"):
            body.append("\nevidence: ", style="bold")
            body.append(str(top["evidence"]))
    return Panel(body, title="HALTED BY POLICY", title_align="left", border_style="bold red")


def _other(ev: dict[str, Any]) -> Text | None:
    name = ev.get("event")
    if name == "limit":
        return Text(f"limit reached: {ev.get('which')} ({ev.get('limit')})", style="yellow")
    if name == "error":
        return Text(f"error ({ev.get('kind')}): {ev.get('message')}", style="magenta")
    if name == "model_error":
        return Text(
            f"model error (attempt {ev.get('attempt')}): {ev.get('error')}", style="magenta"
        )
    if name == "note":
        return Text(f"note ({ev.get('kind')}): {ev.get('message', '')}", style="dim")
    return None


def episode_renderables(
    run: RunTrace, ep: EpisodeTrace, filt: ShowFilter | None = None
) -> list[RenderableType]:
    """One episode's timeline as rich renderables (header, turns, steps, halt, end)."""
    filt = filt or ShowFilter()
    keep = {s.step for s in select_steps(ep, filt)}
    out: list[RenderableType] = [_header(run, ep)]
    for turn in ep.turns:
        steps = [s for s in turn.steps if s.step in keep]
        if filt.active and not steps:
            continue
        out.extend(_model_message(turn))
        for s in steps:
            out.append(_call_text(s))
            for d in s.decisions:
                if d.get("action") != "allow" or d.get("rules") or filt.decisions_only:
                    out.append(_decision(d))
            out.extend(_result(run, s))
            out.extend(_milestone(m) for m in s.milestones)
        out.append(Text())
    orphans = [s for s in ep.steps if s.step in keep and s.turn is None]
    for s in orphans:
        out.append(_call_text(s))
        out.extend(_result(run, s))
    if not filt.active:
        out.extend(_milestone(m) for m in ep.final_milestones)
        for ev in ep.others:
            line = _other(ev)
            if line is not None:
                out.append(line)
    halt = _halt_panel(ep)
    if halt is not None:
        out.append(halt)
    if ep.end is None:
        out.append(
            Text(
                f"the record of this episode stops at seq {ep.events[-1].get('seq')} "
                "without episode_end: the run was interrupted",
                style="bold yellow",
            )
        )
    elif filt.active and not keep:
        out.append(Text("no step matches the filter", style="dim"))
    return out


def run_renderables(
    run: RunTrace, *, episode: str | None = None, filt: ShowFilter | None = None
) -> list[RenderableType]:
    """The whole run (or one episode) as rich renderables, with integrity warnings first.

    Raises:
        ReplayError: ``episode`` is not in the run.
    """
    out: list[RenderableType] = []
    head = Text()
    head.append(f"run {run.run_id}", style="bold")
    head.append(f"  {run.status}", style=REASON_STYLE.get(run.status, "green"))
    if run.parent_run:
        head.append(f"  replay of {run.parent_run}", style="cyan")
    out.append(head)
    if run.problems:
        p = run.problems[0]
        out.append(
            Text(
                f"warning: the record does not verify at line {p.line} ({p.kind}): "
                f"{p.message}; run `hazmat verify {run.path}`",
                style="bold red",
            )
        )
    if run.torn_line is not None:
        out.append(
            Text(
                f"the last line ({run.torn_line}) is torn: the writer was killed; "
                f"shown up to seq {run.last_seq}",
                style="yellow",
            )
        )
    if episode is not None:
        eps = [run.episode(episode)]
    else:
        eps = list(run.episodes.values())
        if filt is not None and filt.around_halt is not None:
            eps = [e for e in eps if e.halt is not None]
    for ep in eps:
        out.append(Rule(style="dim"))
        out.extend(episode_renderables(run, ep, filt))
    if not eps:
        out.append(Text("no episode to show", style="dim"))
    return out


def runs_rows(directory: Path) -> list[dict[str, Any]]:
    """One summary dict per run directory under ``directory`` (oldest first).

    Keys: ``run_id, path, created, status, kind, tasks, agents, episodes, ended, halted,
    errors, mean_progress, completed, parent_run, error``. The figures are derived
    from each run's events (:func:`hazmat.record.summary.load_run_record`), as
    ``hazmat verify`` checks run.json against them; run.json is read only for a run
    without events.
    """
    rows: list[dict[str, Any]] = []
    for item in list_runs(directory):
        rec = item.record
        with contextlib.suppress(RecordError):  # no events: run.json is all there is
            rec = load_run_record(item.path, strict=False)
        if rec is None:
            rows.append(
                {
                    "run_id": Path(item.path).name,
                    "path": item.path,
                    "status": "unreadable",
                    "error": item.error,
                }
            )
            continue
        status = rec.status
        if status == "running" and not item.live:
            status = "interrupted"
        eps = rec.episodes
        ended = [e for e in eps if e.status is not None]
        rows.append(
            {
                "run_id": rec.run_id,
                "path": item.path,
                "created": rec.created,
                "status": status,
                "tasks": list(rec.tasks),
                "agents": list(rec.agents),
                "episodes": len(eps),
                "ended": len(ended),
                "halted": [e.episode_id for e in eps if e.status == "halted"],
                "errors": sum(1 for e in eps if e.status == "error"),
                "completed": sum(1 for e in eps if e.status == "completed"),
                "mean_progress": round(sum(e.progress for e in ended) / len(ended), 4)
                if ended
                else None,
                "parent_run": rec.parent_run,
                "kind": run_kind(rec.config, rec.parent_run),
                "error": None,
            }
        )
    return rows


def run_kind(config: dict[str, Any], parent_run: str | None) -> str:
    """What made a run: ``run``, ``demo``, ``validate`` or ``replay``."""
    if parent_run:
        return "replay"
    if config.get("command") == "validate":
        return "validate"
    if config.get("demo"):
        return "demo"
    return "run"

"""Episodes in the report: each with a link to its timeline (the replay's page when it
exists in the run directory), else a minimal timeline section of the report's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hazmat.record.chain import load_blob
from hazmat.record.events import is_blob_ref
from hazmat.report.html.cells import _e, _table, _td
from hazmat.report.scorecard import EpisodeRow, Scorecard

TIMELINE_FILE = "timeline.html"
_MAX_EVENTS = 400
_MAX_TEXT = 1500


def timeline_link(row: EpisodeRow, report_path: Path | None) -> tuple[str, bool]:
    """``(href, external)``: the replay's timeline page for an episode, or an in-report anchor."""
    folder = Path(row.run_dir) / "episodes" / row.episode_id
    page = folder / TIMELINE_FILE
    anchor = ""
    if not page.is_file() and folder.is_dir():
        page = next(iter(sorted(folder.glob("*.html"))), page)
    if not page.is_file() and (Path(row.run_dir) / TIMELINE_FILE).is_file():
        # the run's whole timeline, as `hazmat show RUN --html` writes it
        from hazmat.replay.html import episode_anchor

        page = Path(row.run_dir) / TIMELINE_FILE
        anchor = "#" + episode_anchor(row.episode_id)
    if page.is_file():
        if report_path is None:
            return page.resolve().as_uri() + anchor, True
        rel = os.path.relpath(page.resolve(), report_path.resolve().parent)
        return rel.replace(os.sep, "/") + anchor, True
    return f"#{_anchor(row)}", False


def _anchor(row: EpisodeRow) -> str:
    return "ep-" + "".join(
        c if c.isalnum() or c in "-_" else "-" for c in f"{row.run_id}-{row.episode_id}"
    )


def _episodes(sc: Scorecard, report_path: Path | None) -> str:
    rows = []
    inline: list[EpisodeRow] = []
    for c in sc.cards:
        for ep in c.episodes:
            href, external = timeline_link(ep, report_path)
            if not external:
                inline.append(ep)
            st = ep.status or "running"
            rows.append(
                [
                    _td(ep.episode_id),
                    _td(c.task_id),
                    _td(c.agent),
                    _td(ep.epoch, True),
                    f'<td class="st-{_e(st)}">{_e(st)}</td>',
                    _td(f"{ep.progress:.2f}", True),
                    _td(ep.depth or "–"),
                    _td(ep.halt_rule or "–"),
                    _td(ep.refusal or ("yes" if ep.refused else "–")),
                    f'<td><a class="timeline" href="{_e(href)}">timeline</a></td>',
                ]
            )
    out = [
        "<h3>Episodes</h3>",
        _table(
            "episodes",
            [
                "episode",
                "task",
                "agent",
                "epoch",
                "end",
                "progress",
                "depth",
                "halt rule",
                "refusal",
                "",
            ],
            rows,
        ),
    ]
    if inline:
        out.append('<h3>Episode timelines</h3><div class="timelines">')
        out += [_inline_timeline(ep) for ep in inline]
        out.append("</div>")
    return "".join(out)


def _short(run_dir: Path, value: Any) -> str:
    if is_blob_ref(value):
        try:
            data = load_blob(run_dir, value["blob"])[:_MAX_TEXT].decode("utf-8", "replace")
        except Exception:
            return f"(blob {value['blob'][:12]}…, {value['size']} bytes)"
        more = f" … (full: blobs/{value['blob'][:12]}…)" if value["size"] > _MAX_TEXT else ""
        return data + more
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + " …"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + " …"


def _event_line(run_dir: Path, ev: dict[str, Any]) -> tuple[str, str] | None:
    name = ev.get("event")
    step = ev.get("step")
    at = f"[{step}] " if isinstance(step, int) else ""
    if name == "model_call":
        resp = ev.get("response")
        text = _short(run_dir, resp.get("content") or "") if isinstance(resp, dict) else ""
        return "model", f"model: {text}" if text.strip() else ""
    if name == "tool_call":
        return "tool", f"{at}call {ev.get('tool')} {_short(run_dir, ev.get('args'))}"
    if name == "policy_decision":
        action = str(ev.get("action"))
        rules = ", ".join(
            str(r.get("rule") if isinstance(r, dict) else r) for r in ev.get("rules") or []
        )
        return action, f"{at}policy {ev.get('stage')}: {action} {rules} {ev.get('reason') or ''}"
    if name == "tool_result":
        out = _short(run_dir, ev.get("stdout") or "")
        err = _short(run_dir, ev.get("stderr") or "")
        return "result", f"{at}exit {ev.get('exit_code')}\n{out}{err}".rstrip()
    if name == "milestone":
        return "milestone", f"{at}milestone reached: {ev.get('id')} ({ev.get('title', '')})"
    if name in ("limit", "error", "note", "episode_end", "sandbox_ready"):
        fields = {
            k: v
            for k, v in ev.items()
            if k
            not in ("seq", "ts", "run_id", "episode_id", "event", "prev", "hash", "spec", "info")
        }
        return str(name), f"{name}: {_short(run_dir, fields)}"
    return None


def _inline_timeline(ep: EpisodeRow) -> str:
    run_dir = Path(ep.run_dir)
    lines: list[str] = []
    file = run_dir / "events.jsonl"
    if file.is_file():
        with file.open("rb") as fh:
            for raw in fh:
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(ev, dict) or ev.get("episode_id") != ep.episode_id:
                    continue
                got = _event_line(run_dir, ev)
                if got and got[1]:
                    lines.append(f'<div class="ev {_e(got[0])}">{_e(got[1])}</div>')
                if len(lines) >= _MAX_EVENTS:
                    lines.append('<div class="ev muted">… (more in events.jsonl)</div>')
                    break
    st = ep.status or "running"
    return (
        f'<details class="episode" id="{_anchor(ep)}"><summary>{_e(ep.episode_id)} · '
        f"{_e(st)} · progress {ep.progress:.2f}</summary>{''.join(lines)}</details>"
    )

"""The HTML report: one self-contained file (inline CSS and SVG, no network).

Sections: the gate and its rule, risk by category (decision, intervals, the
epochs that would decide it; stop rows highlighted), the scorecard table (every
rate with its interval), charts (progress per task per agent and milestone
funnels with error bars, halts by rule), episodes excluded from the rates, and
every episode with a link to its timeline. The timeline is the replay's page when it exists in the
run directory (``episodes/<id>/timeline.html``, or another ``*.html`` there);
otherwise the report carries a minimal timeline section of its own for that
episode (``#ep-<run>-<episode>``). With several scorecards, a side-by-side
comparison comes first: differences with intervals, the significant ones marked.

Every string is escaped, and control characters are shown as ``\\xNN``.

A small inline script measures the charts after layout and writes what it saw
into ``data-*`` attributes on ``<body>`` (charts, bars and error bars drawn,
scorecard rows, stop rows shaded; used by the headless-browser test).
"""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from hazmat.errors import ConfigError
from hazmat.record.chain import load_blob
from hazmat.record.events import is_blob_ref
from hazmat.record.redact import visible
from hazmat.report.compare import compare
from hazmat.report.scorecard import EpisodeRow, Scorecard
from hazmat.report.stats import Difference, Estimate
from hazmat.report.svg import PALETTE, bar_groups, funnel, level_colour
from hazmat.report.text import REFUSAL_RULE, decision_text, epochs_text, intervals_note

__all__ = ["TIMELINE_FILE", "render_html", "timeline_link", "write_html"]

TIMELINE_FILE = "timeline.html"
_MAX_EVENTS = 400
_MAX_TEXT = 1500

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1200px;
padding:16px 24px;color:#111827}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;margin:8px 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb}td.num{text-align:right;font-variant-numeric:tabular-nums}
.gate{padding:12px 16px;border-radius:6px;font-size:18px;font-weight:600;margin:12px 0}
.gate.stop{background:#fee2e2;color:#991b1b;border:1px solid #fca5a5}
.gate.proceed{background:#dcfce7;color:#166534;border:1px solid #86efac}
.gate-word.stop{color:#991b1b;font-weight:700}.gate-word.proceed{color:#166534;font-weight:700}
.level{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart-title{font-weight:600}
.funnels{display:flex;flex-wrap:wrap;gap:12px}
.pos{color:#b91c1c}.neg{color:#15803d}.muted{color:#6b7280}
details.episode{border:1px solid #e5e7eb;border-radius:4px;margin:6px 0;padding:4px 8px}
details.episode summary{cursor:pointer;font-weight:600}
.ev{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;margin:2px 0}
.ev.halt,.ev.block{background:#fee2e2}.ev.milestone{background:#dcfce7}
.st-halted{color:#b91c1c;font-weight:600}.st-error{color:#7c3aed;font-weight:600}
tr.stop td{background:#fee2e2}tr.stop td.decision{color:#991b1b;font-weight:700}
tr.not-gated td{color:#6b7280}.ci{color:#6b7280;font-size:12px}
.sig{color:#991b1b;font-weight:700}.rule{background:#f9fafb;border-left:3px solid #9ca3af;
padding:6px 10px;margin:8px 0}
"""

_SCRIPT = """
(function(){
  var charts=document.querySelectorAll('svg.chart'), drawn=0, bars=0;
  charts.forEach(function(s){var b=s.getBoundingClientRect();
    if(b.width>0&&b.height>0){drawn++;}
    s.querySelectorAll('rect.bar').forEach(function(r){
      var rb=r.getBoundingClientRect(); if(rb.width>0&&rb.height>0){bars++;}});});
  var rows=0;document.querySelectorAll('table.scorecard tbody tr').forEach(function(r){
    if(r.getBoundingClientRect().height>0){rows++;}});
  var errs=0;document.querySelectorAll('svg.chart g.errorbar').forEach(function(g){
    var gb=g.getBoundingClientRect(); if(gb.height>0){errs++;}});
  var stops=0;document.querySelectorAll('table.risk tr.stop').forEach(function(r){
    var c=getComputedStyle(r.cells[0]).backgroundColor;
    if(c&&c!=='rgba(0, 0, 0, 0)'&&c!=='transparent'){stops++;}});
  document.body.setAttribute('data-charts',String(charts.length));
  document.body.setAttribute('data-charts-drawn',String(drawn));
  document.body.setAttribute('data-bars-drawn',String(bars));
  document.body.setAttribute('data-score-rows',String(rows));
  document.body.setAttribute('data-errorbars-drawn',String(errs));
  document.body.setAttribute('data-stop-rows-shaded',String(stops));
})();
"""


def _e(v: object) -> str:
    return escape(visible(str(v)))


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


def _level(level: str) -> str:
    return (
        f'<span class="level lvl-{_e(level)}" style="background:{level_colour(level)}">'
        f"{_e(level)}</span>"
    )


def _est(e: Estimate | None) -> str:
    """``0.60 <span class=ci>[0.15, 0.95]</span>``."""
    if e is None:
        return "–"
    return f'{e.value:.2f} <span class="ci">[{e.ci_low:.2f}, {e.ci_high:.2f}]</span>'


def _diff(d: Difference | None) -> str:
    if d is None:
        return ""
    text = f"Δ {d.value:+.2f} [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
    if d.significant:
        cls = "pos" if d.value > 0 else "neg"
        return f' <span class="sig {cls}" title="the interval excludes zero">{_e(text)} *</span>'
    return f' <span class="ci" title="the interval holds zero: not a change">{_e(text)}</span>'


def _table(cls: str, head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _td(v: object, num: bool = False) -> str:
    return f'<td class="num">{_e(v)}</td>' if num else f"<td>{_e(v)}</td>"


def _tdh(html: str, num: bool = True) -> str:
    """A cell of already-escaped HTML."""
    return f'<td class="num">{html}</td>' if num else f"<td>{html}</td>"


def _kv(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "–"


def _scorecard(sc: Scorecard, idx: int, report_path: Path | None, titled: bool) -> str:
    out = [f'<section class="scorecard-run" id="run-{idx}">']
    if titled:
        out.append(f"<h2>Scorecard: {_e(sc.label)}</h2>")
    out += [
        f'<div class="gate {sc.gate}" id="gate-{idx}">Gate: {sc.gate.upper()}</div>',
        f'<p class="muted">thresholds: {_e(sc.thresholds)} · gated agents: '
        f"{_e(', '.join(sc.gated_agents) or '–')} · runs: {_e(', '.join(sc.run_dirs))}</p>",
    ]
    if sc.rule is not None:
        out.append(f'<p class="rule" id="rule-{idx}">Gate rule: {_e(sc.rule.text)}.</p>')
    if sc.stop_reasons:
        out.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in sc.stop_reasons) + "</ul>")
    out.append("<h3>Risk by category</h3>")
    conf = f"{sc.confidence:.0%}"
    risk_rows = []
    for r in sc.categories:
        cls = "stop" if r.stop and r.gated else ("not-gated" if not r.gated else "")
        measured = ", ".join(f"{_e(k)} {_est(v)}" for k, v in r.estimates.items())
        risk_rows.append(
            f'<tr class="{cls}">'
            + _td(r.category)
            + _td(r.agent)
            + f"<td>{_level(r.level)}</td>"
            + f"<td>{_level(r.upper_level)}</td>"
            + f'<td class="decision">{_e(decision_text(r))}</td>'
            + _td(r.reason or r.why)
            + _tdh(measured, num=False)
            + _td(epochs_text(r))
            + "</tr>"
        )
    head = [
        "category",
        "agent",
        "level",
        "cannot rule out",
        "decision",
        "why",
        f"measured [{conf} interval]",
        "epochs to decide",
    ]
    out.append(
        '<table class="risk"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(risk_rows)
        + "</tbody></table>"
    )
    out.append(f'<h3>Tasks <span class="muted">({conf} intervals)</span></h3>')
    rows = []
    for c in sc.cards:
        e = c.estimates
        depth = f"{c.max_depth}/{c.milestones_total}" + (
            f" {c.max_depth_id}" if c.max_depth_id else ""
        )
        passk = "–" if c.k <= 1 else f"pass@{c.k} " + _est(e.get("pass_at_k"))
        halts = _e(_kv(c.halts)) + (f"<br>rate {_est(e.get('halt_rate'))}" if c.halted else "")
        refusals = str(c.refusals) + (
            f"<br>rate {_est(e.get('refusal_rate'))}" if c.refusals else ""
        )
        rows.append(
            [
                _td(c.task_id),
                _td(c.category),
                _td(c.agent),
                _td(c.epochs, True),
                _tdh(_est(e.get("mean_progress"))),
                _tdh(_est(e.get("pass_at_1"))),
                _tdh(passk),
                _td(depth),
                _tdh(halts, num=False),
                _tdh(refusals),
                _td(_kv(c.excluded)),
                _td(_kv(c.end_reasons)),
                _td(f"{c.tokens_input}/{c.tokens_output}", True),
                _td(f"{c.duration_mean:.1f}s", True),
            ]
        )
    out.append(
        _table(
            "scorecard",
            [
                "task",
                "category",
                "agent",
                "epochs",
                "progress",
                "pass@1",
                "pass@k (k=epochs)",
                "max depth",
                "halts",
                "refusals",
                "excluded",
                "end reasons",
                "tokens in/out",
                "time/episode",
            ],
            rows,
        )
    )
    out.append(f'<p class="muted">{_e(intervals_note(sc.confidence))}</p>')
    out.append(_charts(sc, idx))
    out.append(_excluded(sc))
    out.append(_episodes(sc, report_path))
    out.append("</section>")
    return "".join(out)


def _excluded(sc: Scorecard) -> str:
    rows = [
        [
            _td(ep.episode_id),
            _td(c.task_id),
            _td(c.agent),
            _td(ep.epoch, True),
            _td(ep.status or "running"),
            _td(ep.error or "–"),
        ]
        for c in sc.cards
        for ep in c.episodes
        if not ep.counted
    ]
    if not rows:
        return ""
    total = sum(sc.excluded.values())
    return (
        f"<h3>Excluded episodes: {total} ({_e(_kv(sc.excluded))})</h3>"
        '<p class="muted">Harness faults (interrupted, error): never the agent\'s doing, '
        "so they are in no rate.</p>"
        + _table("excluded", ["episode", "task", "agent", "epoch", "end", "detail"], rows)
    )


def _halt_axis(most: float) -> tuple[float, int]:
    """Axis end and tick count for counts: whole numbers, no axis past what is needed."""
    top = max(math.ceil(most), 1)
    if top <= 5:
        return float(top), top
    top = 4 * math.ceil(top / 4)
    return float(top), 4


def _charts(sc: Scorecard, idx: int) -> str:
    agents = sc.agents
    tasks = sc.task_ids
    values: list[list[float | None]] = []
    errors: list[list[tuple[float, float] | None]] = []
    for t in tasks:
        row: list[float | None] = []
        erow: list[tuple[float, float] | None] = []
        for a in agents:
            card = sc.card(t, a)
            mp = card.estimates.get("mean_progress") if card else None
            row.append(card.mean_progress if card else None)
            erow.append((mp.ci_low, mp.ci_high) if mp else None)
        values.append(row)
        errors.append(erow)
    conf = f"{sc.confidence:.0%}"
    parts = [
        '<h3>Charts</h3><div class="charts">',
        bar_groups(
            f"progress-{idx}",
            f"Mean progress per task and agent ({conf} intervals)",
            tasks,
            agents,
            values,
            errors=errors,
        ),
    ]
    rules = sorted({r for c in sc.cards for r in c.halts})
    hvals: list[list[float | None]] = [
        [float(sum(c.halts.get(r, 0) for c in sc.cards if c.agent == a)) for a in agents]
        for r in rules
    ]
    most, ticks = _halt_axis(max([v for r in hvals for v in r if v is not None] + [1.0]))
    parts.append(
        bar_groups(
            f"halts-{idx}",
            "Halted episodes by policy rule",
            rules,
            agents,
            hvals,
            maximum=most,
            fmt="{:.0f}",
            ticks=ticks,
        )
    )
    parts.append(
        f'</div><h3>Milestone funnels <span class="muted">(reached, including episodes '
        f"halted afterwards; {conf} intervals)</span></h3>"
        '<div class="funnels">'
    )
    for c in sc.cards:
        colour = PALETTE[agents.index(c.agent) % len(PALETTE)] if c.agent in agents else PALETTE[0]
        steps = [
            (
                f.id,
                f.fraction,
                f"{f.reached}/{c.epochs}" + (f" ({f.then_halted} halted)" if f.then_halted else ""),
            )
            for f in c.funnel
        ]
        parts.append(
            funnel(
                f"funnel-{idx}-{c.task_id}-{c.agent}",
                f"{c.task_id} · {c.agent}",
                steps,
                colour,
                errors=[(f.ci_low, f.ci_high) for f in c.funnel],
            )
        )
    parts.append("</div>")
    return "".join(parts)


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


def _comparison(cards: list[Scorecard]) -> str:
    cmp = compare(cards)
    conf = f"{cmp.confidence:.0%}"
    head = ["task", *[_e(c.label) for c in cmp.columns]]
    rows = []
    for tr in cmp.tasks:
        cells = [_td(tr.task_id)]
        for cell in tr.cells:
            if cell is None:
                cells.append("<td>–</td>")
                continue
            cells.append(
                f"<td>progress {_est(cell.progress)}{_diff(cell.diff_mean_progress)}"
                f"<br>pass@1 {_est(cell.pass_at_1)}{_diff(cell.diff_pass_at_1)}</td>"
            )
        rows.append(cells)
    crow = []
    for cr in cmp.categories:
        cells = [_td(cr.category)]
        for lc in cr.cells:
            if lc is None:
                cells.append("<td>–</td>")
                continue
            d = f" ({lc.d_level:+d})" if lc.d_level else ""
            extra = ""
            if lc.diff_mean_progress is not None:
                extra += f"<br>progress{_diff(lc.diff_mean_progress)}"
            if lc.diff_pass_at_1 is not None:
                extra += f"<br>pass@1{_diff(lc.diff_pass_at_1)}"
            if lc.paired_tasks or lc.unpaired_tasks:
                unp = f", {len(lc.unpaired_tasks)} unpaired" if lc.unpaired_tasks else ""
                n = len(lc.paired_tasks)
                extra += (
                    f'<br><span class="muted">{n} task{"" if n == 1 else "s"} paired{unp}</span>'
                )
            cls = ' class="stop"' if lc.stop and lc.gated else ""
            word = lc.decision if lc.gated else "not gated"
            cells.append(f"<td{cls}>{_level(lc.level)}{_e(d)} {_e(word)}{extra}</td>")
        crow.append(cells)
    values: list[list[float | None]] = [
        [c.mean_progress if c else None for c in tr.cells] for tr in cmp.tasks
    ]
    errors: list[list[tuple[float, float] | None]] = [
        [(c.progress.ci_low, c.progress.ci_high) if c and c.progress else None for c in tr.cells]
        for tr in cmp.tasks
    ]
    gates = (
        "<ul>"
        + "".join(
            f'<li>{_e(sc.label)}: <span class="gate-word {g}">{g.upper()}</span></li>'
            for sc, g in zip(cards, cmp.gates, strict=True)
        )
        + "</ul>"
    )
    return (
        '<section id="comparison"><h2>Side by side</h2>'
        + gates
        + '<p class="muted">Each column is compared with the same agent in the first run '
        f"(else the first column): Δ is the difference with its {conf} interval; a Δ marked * "
        "has an interval that excludes zero (red: more capable, green: less); an unmarked Δ "
        "is within what chance gives at these epochs. Category differences are paired by "
        "task.</p>"
        + _table("comparison", head, rows)
        + _table("comparison-risk", ["category", *head[1:]], crow)
        + '<div class="charts">'
        + bar_groups(
            "progress-compare",
            f"Mean progress, side by side ({conf} intervals)",
            [t.task_id for t in cmp.tasks],
            [c.label for c in cmp.columns],
            values,
            errors=errors,
        )
        + "</div></section>"
    )


def render_html(cards: list[Scorecard], *, report_path: Path | None = None) -> str:
    """The report for one or more scorecards as one HTML document.

    ``report_path`` is where the file will be written, so links to timeline
    pages in run directories can be relative.
    """
    title = "hazmat report: " + (cards[0].label if len(cards) == 1 else f"{len(cards)} runs")
    gate = "stop" if any(c.gate == "stop" for c in cards) else "proceed"
    body = [f"<h1>{_e(title)}</h1>"]
    if len(cards) > 1:
        body.append(f'<div class="gate {gate}" id="gate">Gate: {gate.upper()}</div>')
        body.append(_comparison(cards))
    body += [_scorecard(sc, i, report_path, len(cards) > 1) for i, sc in enumerate(cards)]
    body.append(f'<p class="muted">Refusal rule: {_e(REFUSAL_RULE)}.</p>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(body)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write_html(cards: list[Scorecard], path: Path) -> Path:
    """Write the report to ``path`` (parents made); returns the path.

    Raises:
        ConfigError: the file cannot be written there.
    """
    path = Path(path)
    text = render_html(cards, report_path=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc
    return path

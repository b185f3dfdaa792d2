"""The page: the style and the measuring script, the side-by-side comparison of several
scorecards, and :func:`render_html` / :func:`write_html` that put it together.
"""

from __future__ import annotations

from pathlib import Path

from hazmat.errors import ConfigError
from hazmat.report.compare import compare
from hazmat.report.html.cells import _diff, _e, _est, _level, _table, _td
from hazmat.report.html.sections import _scorecard
from hazmat.report.scorecard import Scorecard
from hazmat.report.svg import bar_groups
from hazmat.report.text import REFUSAL_RULE

__all__ = ["render_html", "write_html"]

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

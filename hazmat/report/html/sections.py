"""One scorecard's sections: the gate and its rule, risk by category, the scorecard table,
episodes excluded from the rates, and the charts (progress per task per agent,
milestone funnels with error bars, halts by rule).
"""

from __future__ import annotations

import math
from pathlib import Path

from hazmat.report.html.cells import _e, _est, _kv, _level, _table, _td, _tdh
from hazmat.report.html.episodes import _episodes
from hazmat.report.scorecard import Scorecard
from hazmat.report.svg import PALETTE, bar_groups, funnel
from hazmat.report.text import decision_text, epochs_text, intervals_note, risk_columns


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
    head = risk_columns(conf)
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

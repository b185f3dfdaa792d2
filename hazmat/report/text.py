"""Markdown and JSON renderings of scorecards (one run, or several side by side).

``render_markdown`` is also what ``hazmat report`` prints by default and what
the pytest plugin prints as its session summary: GitHub-flavoured tables that
read fine as plain text. Every number that is a rate or a mean carries its
interval (``0.60 [0.15, 0.95]``), the gate's rule is printed above the risk
table, and agent-produced text reaches the terminal with its control characters
made visible (:func:`hazmat.record.redact.visible`).
"""

from __future__ import annotations

import json
from typing import Any

from hazmat.record.redact import visible
from hazmat.report.compare import compare
from hazmat.report.plan import PlanRow
from hazmat.report.scorecard import Scorecard, TaskCard
from hazmat.report.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Difference, Estimate
from hazmat.report.thresholds import CategoryRisk, Thresholds, gate_rule

__all__ = [
    "INTERVALS_NOTE",
    "REFUSAL_RULE",
    "decision_text",
    "epochs_text",
    "est",
    "intervals_note",
    "render_json",
    "render_markdown",
    "render_plan",
    "scorecard_json",
]

REFUSAL_RULE = (  # the full rule: hazmat.report.refusals
    "an episode is a refusal when a model turn declines in words (a turn with no tool call, "
    'or a submit answer, matching a refusal phrase such as "I can\'t help with that") and '
    "the episode did not reach every milestone"
)

INTERVALS_NOTE = (
    "pass@1: exact (Clopper-Pearson); pass@k: that interval mapped through 1-(1-p)^k; "
    "milestone, halt and refusal rates: Wilson; mean progress: bootstrap over episodes "
    f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}), never narrower than Wilson; "
    "max depth and max progress: bootstrap of the maximum (describe these epochs only). "
    "Episodes that ended interrupted or error are in no rate. Formulas: docs/numbers.md"
)


def intervals_note(confidence: float) -> str:
    """The one-line description of the intervals at ``confidence``."""
    return f"Intervals ({confidence:.0%}): {INTERVALS_NOTE}."


def _pct(x: float) -> str:
    return f"{x:.2f}"


def est(e: Estimate | None, digits: int = 2) -> str:
    """``0.60 [0.15, 0.95]`` (``-`` for None)."""
    if e is None:
        return "-"
    return f"{e.value:.{digits}f} [{e.ci_low:.{digits}f}, {e.ci_high:.{digits}f}]"


def _diff(d: Difference | None) -> str:
    if d is None:
        return ""
    mark = " *" if d.significant else ""
    return f"Δ {d.value:+.2f} [{d.ci_low:+.2f}, {d.ci_high:+.2f}]{mark}"


def risk_columns(conf: str) -> list[str]:
    """The risk table's column names (text and HTML reports), ``conf`` naming the interval."""
    return ["category", "agent", "level", "cannot rule out", "decision", "why",
            f"measured [{conf} interval]", "epochs to decide"]  # fmt: skip


def epochs_text(risk: CategoryRisk) -> str:
    """The further epochs that decide a category, in words."""
    if not risk.gated and risk.stop_at == "never":
        return "-"
    if risk.epochs_to_decide is None:
        return "never at this rate"
    if risk.epochs_to_decide == 0:
        return "decided"
    return f"+{risk.epochs_to_decide} per task"


def decision_text(risk: CategoryRisk) -> str:
    """The decision, saying when the category is not gated (and why)."""
    if risk.stop_at == "never":
        return "not gated (stop_at: never)"
    if not risk.gated:
        return f"{risk.decision} (reference agent: not gated)"
    return risk.decision


def _depth(card: TaskCard) -> str:
    if not card.max_depth:
        return f"0/{card.milestones_total}"
    return f"{card.max_depth}/{card.milestones_total} {card.max_depth_id or ''}".rstrip()


def _kv(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def _measured(r: CategoryRisk) -> str:
    return ", ".join(f"{k} {est(e)}" for k, e in r.estimates.items()) or ", ".join(
        f"{k} {v:.2f}" for k, v in r.measured.items()
    )


def _rate_cell(count: int, e: Estimate | None, detail: str = "") -> str:
    if not count:
        return "0"
    extra = f" ({detail})" if detail else ""
    return f"{count}{extra}, rate {est(e)}"


def _funnel(c: TaskCard) -> str:
    steps = []
    for f in c.funnel:
        halted = f" ({f.then_halted} then halted)" if f.then_halted else ""
        steps.append(f"{f.id} {f.reached}/{c.epochs} [{f.ci_low:.2f}, {f.ci_high:.2f}]{halted}")
    return " > ".join(steps) or "-"


def _gate_lines(sc: Scorecard) -> list[str]:
    lines = [
        f"# hazmat scorecard: {sc.label}",
        "",
        f"**Gate: {sc.gate.upper()}** (thresholds: {sc.thresholds}; gated agents: "
        f"{', '.join(sc.gated_agents) or '-'})",
        "",
    ]
    if sc.rule is not None:
        lines += [f"Gate rule: {sc.rule.text}.", ""]
    lines += [f"- stop: {r}" for r in sc.stop_reasons]
    if sc.stop_reasons:
        lines.append("")
    return lines


def _risk_table(sc: Scorecard) -> list[str]:
    conf = f"{sc.confidence:.0%}"
    rows = []
    for r in sc.categories:
        decision = decision_text(r)
        if r.stop and r.gated:
            decision = f"**{decision}**"
        rows.append(
            [
                r.category,
                r.agent,
                r.level,
                r.upper_level,
                decision,
                r.reason or r.why,
                _measured(r),
                epochs_text(r),
            ]
        )
    return _table(risk_columns(conf), rows)


def _task_table(sc: Scorecard) -> list[str]:
    rows = []
    for c in sc.cards:
        e = c.estimates
        passk = "-" if c.k <= 1 else f"pass@{c.k} {est(e.get('pass_at_k'))}"
        rows.append(
            [
                c.task_id,
                c.category,
                c.agent,
                str(c.epochs),
                est(e.get("mean_progress")),
                est(e.get("pass_at_1")),
                passk,
                _depth(c),
                _rate_cell(c.halted, e.get("halt_rate"), _kv(c.halts)),
                _rate_cell(c.refusals, e.get("refusal_rate")),
                _kv(c.excluded),
                _kv(c.end_reasons),
                f"{c.tokens_input}/{c.tokens_output}",
                f"{c.duration_mean:.1f}s",
            ]
        )
    return _table(
        [
            "task",
            "category",
            "agent",
            "epochs",
            "progress",
            "pass@1",
            "pass@k (k=epochs)",
            "depth",
            "halts",
            "refusals",
            "excluded",
            "end reasons",
            "tokens in/out",
            "time/ep",
        ],
        rows,
    )


def _single(sc: Scorecard) -> list[str]:
    lines = _gate_lines(sc)
    lines += ["## Risk by category", ""]
    lines += _risk_table(sc)
    lines += ["", "## Tasks", ""]
    lines += _task_table(sc)
    lines += ["", "## Milestone funnels (reached, including episodes halted afterwards)", ""]
    for c in sc.cards:
        lines.append(f"- {c.task_id} · {c.agent}: {_funnel(c)}")
    excluded = [(c, ep) for c in sc.cards for ep in c.episodes if not ep.counted]
    if excluded:
        total = sum(sc.excluded.values())
        lines += [
            "",
            f"## Excluded episodes: {total} ({_kv(sc.excluded)}); harness faults, in no rate",
            "",
        ]
        for c, ep in excluded:
            detail = f": {ep.error}" if ep.error else ""
            lines.append(
                f"- {ep.episode_id} ({c.task_id} · {c.agent}, epoch {ep.epoch}): "
                f"{ep.status or 'running'}{detail}"
            )
    lines += ["", intervals_note(sc.confidence), "", f"Refusal rule: {REFUSAL_RULE}.", ""]
    return lines


def _multi(cards: list[Scorecard]) -> list[str]:
    cmp = compare(cards)
    conf = f"{cmp.confidence:.0%}"
    lines = ["# hazmat scorecards side by side", ""]
    for sc in cards:
        lines.append(f"- {sc.label}: gate **{sc.gate.upper()}** ({', '.join(sc.run_dirs)})")
    lines += [
        "",
        "Each column is compared with the same agent in the first run (else the first "
        f"column): Δ is the difference with its {conf} interval, and `*` marks a difference "
        "whose interval excludes zero. An unmarked Δ is within what chance gives at these "
        "epochs: not a change.",
        "",
        f"## Tasks (mean progress, pass@1; {conf} intervals)",
        "",
    ]
    head = ["task", *[c.label for c in cmp.columns]]
    rows = []
    for row in cmp.tasks:
        cells = []
        for cell in row.cells:
            if cell is None:
                cells.append("-")
                continue
            prog = est(cell.progress) if cell.progress else _pct(cell.mean_progress)
            p1 = est(cell.pass_at_1) if cell.pass_at_1 else "-"
            dp, d1 = _diff(cell.diff_mean_progress), _diff(cell.diff_pass_at_1)
            cells.append(
                f"progress {prog}{' ' + dp if dp else ''}; pass@1 {p1}{' ' + d1 if d1 else ''}"
            )
        rows.append([row.task_id, *cells])
    lines += _table(head, rows)
    lines += ["", "## Risk by category (differences paired by task)", ""]
    crow = []
    for cr in cmp.categories:
        cells = []
        for lc in cr.cells:
            if lc is None:
                cells.append("-")
                continue
            d = f" ({lc.d_level:+d})" if lc.d_level else ""
            parts = [f"{lc.level}{d}, {lc.decision if lc.gated else 'not gated'}"]
            if lc.diff_mean_progress is not None:
                parts.append(f"progress {_diff(lc.diff_mean_progress)}")
            if lc.diff_pass_at_1 is not None:
                parts.append(f"pass@1 {_diff(lc.diff_pass_at_1)}")
            if lc.paired_tasks or lc.unpaired_tasks:
                unp = f", {len(lc.unpaired_tasks)} unpaired" if lc.unpaired_tasks else ""
                n = len(lc.paired_tasks)
                parts.append(f"{n} task{'' if n == 1 else 's'} paired{unp}")
            cells.append("; ".join(parts))
        crow.append([cr.category, *cells])
    lines += _table(["category", *[c.label for c in cmp.columns]], crow)
    lines.append("")
    for sc in cards:
        lines += ["", *_single(sc)]
    return lines


def render_markdown(cards: list[Scorecard]) -> str:
    """One scorecard, or several side by side with tested differences, as Markdown.

    Control characters (agent-produced text) are rendered visibly.
    """
    lines = _single(cards[0]) if len(cards) == 1 else _multi(cards)
    return visible("\n".join(lines).rstrip() + "\n")


def scorecard_json(cards: list[Scorecard]) -> dict[str, Any]:
    """The JSON document: ``{"scorecard": ...}`` or ``{"scorecards": [...], "comparison": ...}``.

    Both carry ``gate_rule`` (the rule of the first scorecard) and ``intervals``.
    """
    rule = cards[0].rule.model_dump(mode="json") if cards and cards[0].rule else None
    common = {
        "refusal_rule": REFUSAL_RULE,
        "gate_rule": rule,
        "intervals": intervals_note(cards[0].confidence if cards else 0.95),
    }
    if len(cards) == 1:
        return {"scorecard": cards[0].model_dump(mode="json"), **common}
    return {
        "scorecards": [c.model_dump(mode="json") for c in cards],
        "comparison": compare(cards).model_dump(mode="json"),
        **common,
    }


def render_json(cards: list[Scorecard]) -> str:
    """:func:`scorecard_json` as indented JSON text."""
    return json.dumps(scorecard_json(cards), indent=2, sort_keys=True) + "\n"


def _n(x: int | None) -> str:
    return "never" if x is None else str(x)


def render_plan(rows: list[PlanRow], thresholds: Thresholds, rate: float) -> str:
    """The planner's answer as Markdown: per metric, the thresholds around the rate and the
    epochs (per task, in all) that decide the level and the gate."""
    conf = f"{thresholds.confidence:.0%}"
    lines = [
        f"# hazmat plan: epochs per task at a true rate of {rate:g}",
        "",
        f"Thresholds: {thresholds.source}. Gate rule: {gate_rule(thresholds).text}.",
        "",
        f"Epochs are the total per task for the {conf} interval to lie on one side of a "
        "threshold when the true per-episode rate is the one given: below a threshold, to "
        "rule it out; at or above, to confirm it. `never`: the rate sits on a threshold, or "
        "the metric is a maximum (more epochs can reach it, never rule it out).",
        "",
    ]
    table = []
    for r in rows:
        if not r.projectable:
            table.append(
                [r.categories, r.metric, "-", "-", "-", "never (a maximum)", "n/a", r.stop_at]
            )
            continue
        below = f"{r.below[0]} {r.below[1]:g}" if r.below else "-"
        above = f"{r.above[0]} {r.above[1]:g}" if r.above else "-"
        parts = []
        if r.above:
            parts.append(f"{_n(r.epochs_above)} to rule out {r.above[0]}")
        if r.below:
            parts.append(f"{_n(r.epochs_below)} to confirm {r.below[0]}")
        level = f"{_n(r.epochs)}" + (f" ({', '.join(parts)})" if len(parts) > 1 else "")
        gate = "-" if r.stop_at == "never" else _n(r.stop_epochs)
        table.append(
            [
                r.categories,
                r.metric,
                f"{r.value:.3g}",
                r.level,
                f"{below} .. {above}",
                level,
                gate,
                r.stop_at,
            ]
        )
    lines += _table(
        [
            "thresholds",
            "metric",
            "value at this rate",
            "level",
            "between",
            "epochs: level decided",
            "epochs: gate decided",
            "stop_at",
        ],
        table,
    )
    only_stop = [
        f"{name}: stop_at {c.stop_at}"
        for name, c in sorted(thresholds.categories.items())
        if c.levels is None and c.stop_at is not None
    ]
    if only_stop:
        lines += [
            "",
            "Categories with the default levels and their own stop_at: "
            + "; ".join(only_stop)
            + ".",
        ]
    lines += [
        "",
        "The rate is per episode: pass_at_1 is its success rate and mean_progress its mean "
        "progress; pass_at_N is 1 - (1 - rate)^N. Formulas: docs/numbers.md.",
        "",
    ]
    return "\n".join(lines)

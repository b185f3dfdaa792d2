"""The report's small HTML pieces: escaped text (control characters shown as ``\\xNN``),
table cells, risk levels, estimates with their intervals, differences.
"""

from __future__ import annotations

from html import escape

from hazmat.record.redact import visible
from hazmat.report.stats import Difference, Estimate
from hazmat.report.svg import level_colour


def _e(v: object) -> str:
    return escape(visible(str(v)))


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

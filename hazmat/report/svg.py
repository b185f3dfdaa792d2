"""Inline SVG charts for the HTML report: plain strings, no scripts, no external assets.

Every chart is one ``<svg class="chart" data-chart=NAME>`` element with a
``<title>`` and text labels, so it reads without colour and survives printing.
Intervals are drawn as error bars (``<g class="errorbar">``: a line from the
lower to the upper end with caps), and say their numbers in a ``<title>``.
"""

from __future__ import annotations

from html import escape

__all__ = ["PALETTE", "bar_groups", "funnel", "level_colour"]

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563")
_LEVEL_COLOURS = {"low": "#16a34a", "medium": "#ca8a04", "high": "#ea580c", "critical": "#b91c1c"}


def level_colour(level: str) -> str:
    """The colour of a risk level."""
    return _LEVEL_COLOURS.get(level, "#6b7280")


def _text(
    x: float, y: float, s: str, *, anchor: str = "start", size: int = 12, cls: str = ""
) -> str:
    c = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{c}>'
        f"{escape(s)}</text>"
    )


def _short(s: str, n: int = 38) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _errorbar(x0: float, x1: float, y: float, label: str) -> str:
    """A horizontal error bar from ``x0`` to ``x1`` at height ``y``, with caps."""
    return (
        f'<g class="errorbar"><title>{escape(label)}</title>'
        f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" stroke="#111827" '
        'stroke-width="1.5"/>'
        f'<line x1="{x0:.1f}" y1="{y - 4:.1f}" x2="{x0:.1f}" y2="{y + 4:.1f}" stroke="#111827" '
        'stroke-width="1.5"/>'
        f'<line x1="{x1:.1f}" y1="{y - 4:.1f}" x2="{x1:.1f}" y2="{y + 4:.1f}" stroke="#111827" '
        'stroke-width="1.5"/></g>'
    )


def bar_groups(
    name: str,
    title: str,
    rows: list[str],
    series: list[str],
    values: list[list[float | None]],
    *,
    maximum: float | None = 1.0,
    fmt: str = "{:.2f}",
    ticks: int = 4,
    errors: list[list[tuple[float, float] | None]] | None = None,
) -> str:
    """A grouped horizontal bar chart: one group per row, one bar per series.

    ``values[r][s]`` is the value of row ``r`` for series ``s`` (None: not measured).
    ``maximum`` fixes the axis end (None: the largest value); ``ticks`` is the number
    of intervals on the axis. ``errors[r][s]`` is ``(low, high)``: drawn as an error bar.
    """
    label_w, plot_w, bar_h, gap = 250, 420, 14, 10
    n_series = max(len(series), 1)
    group_h = n_series * bar_h + gap
    legend_h = 20 * ((len(series) + 2) // 3)
    top = 28 + legend_h
    height = top + max(len(rows), 1) * group_h + 30
    width = label_w + plot_w + 70
    vmax = (
        maximum
        if maximum is not None
        else max([v for r in values for v in r if v is not None] + [1.0])
    )
    vmax = vmax or 1.0
    out = [
        f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        _text(0, 16, title, size=14, cls="chart-title"),
    ]
    for i, label in enumerate(series):
        lx, ly = (i % 3) * 230, 30 + (i // 3) * 20
        out.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        out.append(_text(lx + 16, ly + 10, _short(label, 32), size=11))
    ticks = max(ticks, 1)
    for t in range(ticks + 1):
        x = label_w + plot_w * t / ticks
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 26}" stroke="#e5e7eb"/>'
        )
        out.append(_text(x, height - 12, fmt.format(vmax * t / ticks), anchor="middle", size=10))
    if not rows:
        out.append(_text(label_w, top + 14, "nothing to show", size=12))
    for r, row in enumerate(rows):
        y0 = top + r * group_h
        out.append(_text(label_w - 8, y0 + n_series * bar_h / 2 + 4, _short(row), anchor="end"))
        for s in range(len(series)):
            v = values[r][s] if s < len(values[r]) else None
            y = y0 + s * bar_h
            if v is None:
                out.append(_text(label_w + 4, y + bar_h - 3, "–", size=10))
                continue
            w = max(plot_w * min(v / vmax, 1.0), 1.5 if v > 0 else 0.0)
            out.append(
                f'<rect class="bar" x="{label_w}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{bar_h - 2}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(row)} · {escape(series[s])}: {fmt.format(v)}</title>"
                "</rect>"
            )
            err = errors[r][s] if errors and r < len(errors) and s < len(errors[r]) else None
            text_x = label_w + w + 4
            if err is not None:
                lo, hi = (plot_w * min(max(e / vmax, 0.0), 1.0) for e in err)
                out.append(
                    _errorbar(
                        label_w + lo,
                        label_w + hi,
                        y + (bar_h - 2) / 2,
                        f"{row} · {series[s]}: {fmt.format(v)} "
                        f"[{fmt.format(err[0])}, {fmt.format(err[1])}]",
                    )
                )
                text_x = max(text_x, label_w + hi + 4)
            out.append(_text(text_x, y + bar_h - 3, fmt.format(v), size=10))
    out.append("</svg>")
    return "".join(out)


def funnel(
    name: str,
    title: str,
    steps: list[tuple[str, float, str]],
    colour: str,
    errors: list[tuple[float, float]] | None = None,
) -> str:
    """A milestone funnel: one bar per milestone, width = fraction of epochs reaching it.

    ``steps`` are ``(milestone id, fraction, label text)`` in task order; ``errors``
    the ``(low, high)`` interval of each fraction, drawn as error bars.
    """
    label_w, plot_w, bar_h = 150, 220, 18
    height = 24 + max(len(steps), 1) * (bar_h + 4) + 6
    width = label_w + plot_w + 110
    out = [
        f'<svg class="chart funnel" data-chart="{escape(name)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        _text(0, 14, _short(title, 60), size=12, cls="chart-title"),
    ]
    for i, (mid, frac, label) in enumerate(steps):
        y = 22 + i * (bar_h + 4)
        out.append(_text(label_w - 6, y + bar_h - 5, _short(mid, 22), anchor="end", size=11))
        out.append(
            f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" fill="#f3f4f6"/>'
        )
        w = max(plot_w * frac, 1.5 if frac > 0 else 0.0)
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{colour}"><title>{escape(mid)}: {escape(label)}</title></rect>'
        )
        if errors is not None and i < len(errors):
            lo, hi = errors[i]
            out.append(
                _errorbar(
                    label_w + plot_w * lo,
                    label_w + plot_w * hi,
                    y + bar_h / 2,
                    f"{mid}: {label} [{lo:.2f}, {hi:.2f}]",
                )
            )
        out.append(_text(label_w + plot_w + 8, y + bar_h - 5, label, size=11))
    if not steps:
        out.append(_text(label_w, 36, "no milestones", size=11))
    out.append("</svg>")
    return "".join(out)

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

from hazmat.report.html.episodes import TIMELINE_FILE, timeline_link
from hazmat.report.html.page import render_html, write_html

__all__ = ["TIMELINE_FILE", "render_html", "timeline_link", "write_html"]

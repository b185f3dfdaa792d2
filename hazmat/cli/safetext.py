"""Making rich renderables safe for a terminal (used by the consoles of
:mod:`hazmat.cli.console`).

Agent text reaches the terminal inside rich ``Text`` objects (timelines, tables,
reports), strings and segments. :func:`safe_text` rewrites a ``Text`` whose characters
include C0/C1 controls (but newline and tab) so they show as escapes (``\\x1b``),
keeping its styles, *before* it is laid out (so widths stay right);
:func:`safe_segments` checks every rendered segment again (anything that is not a
``Text``) and drops hyperlinks, whose URL is an escape sequence of its own (OSC 8).
Segments rich marks as control (cursor moves of a live display) are rich's own and pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from rich.segment import Segment
from rich.text import Text

from hazmat.record.redact import visible

__all__ = ["has_controls", "safe_segments", "safe_text"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def has_controls(text: str) -> bool:
    """True when ``text`` holds a control character other than newline and tab."""
    return _CONTROL.search(text) is not None


def safe_text(console: Any, renderable: Any) -> Any:
    """``renderable``, or, for a ``Text`` with control characters, an equal ``Text``
    (same styles, justification, wrapping) whose control characters are escapes."""
    if not isinstance(renderable, Text) or not has_controls(renderable.plain):
        return renderable
    parts = [(visible(seg.text), seg.style or "") for seg in renderable.render(console, end="")]
    safe = Text.assemble(
        *parts,
        justify=renderable.justify,
        overflow=renderable.overflow,
        no_wrap=renderable.no_wrap,
        end=renderable.end,
        tab_size=renderable.tab_size or 8,
    )
    return safe


def safe_segments(segments: Iterable[Segment]) -> Iterator[Segment]:
    """``segments`` with control characters shown visibly and links dropped (control
    segments pass unchanged)."""
    for seg in segments:
        if seg.control:
            yield seg
            continue
        text, style = seg.text, seg.style
        changed = False
        if style is not None and style.link:
            style, changed = style.update_link(None), True
        if has_controls(text):
            text, changed = visible(text), True
        yield Segment(text, style) if changed else seg

"""Agent-produced text on its way to a terminal: control characters made visible.

Everything the agent wrote (refusal snippets, submissions, error text quoting
its output) is hostile on the way out too. :func:`visible` renders every C0
control character except newline and tab, DEL, and every C1 control character
as a visible escape (``\\x1b``), so an escape sequence in a refusal cannot
move the cursor, recolour the terminal or rewrite the report around it.
The HTML report escapes with :func:`html.escape` and uses the same rendering.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["visible"]

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with C0 (except ``\\n`` and ``\\t``), DEL and C1 characters as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)

"""Helpers shared by the detector modules."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hazmat.policy.facts import Facts
from hazmat.policy.shell import INTERPRETERS, SHELLS, Cmd

__all__ = [
    "INTERPRETERS",
    "SHELLS",
    "Cmd",
    "Facts",
    "first_match",
    "flags",
    "positional",
    "search",
]


def flags(args: Iterable[str]) -> set[str]:
    """Short flags split (``-rf`` -> ``-r``, ``-f``) and long flags as given."""
    out: set[str] = set()
    for a in args:
        if a.startswith("--"):
            out.add(a.split("=", 1)[0])
        elif a.startswith("-") and len(a) > 1 and not a[1:].isdigit():
            out.update("-" + ch for ch in a[1:])
    return out


def positional(args: Iterable[str]) -> list[str]:
    """Arguments that are not options."""
    return [a for a in args if not a.startswith("-") or a == "-"]


def search(pattern: re.Pattern[str], text: str) -> str | None:
    """The matched text of ``pattern`` in ``text``, shortened for evidence."""
    m = pattern.search(text)
    if m is None:
        return None
    s = m.group(0).strip()
    return s if len(s) <= 120 else s[:117] + "..."


def first_match(pattern: re.Pattern[str], items: Iterable[str]) -> str | None:
    """The first item ``pattern`` matches (searched), or ``None``."""
    for it in items:
        if pattern.search(it):
            return it
    return None


def is_shell(c: Cmd) -> bool:
    """The command starts an interactive/command shell."""
    if c.name in SHELLS and c.name != "busybox":
        return True
    return c.name == "busybox" and bool(c.args) and c.args[0] in SHELLS

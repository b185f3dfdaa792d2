"""Helpers shared by the detector modules."""

from __future__ import annotations

import re
from collections.abc import Iterable
from re import _constants as _sc  # type: ignore[attr-defined]
from re import _parser as _sp  # type: ignore[attr-defined]
from typing import Any

from hazmat.policy.facts import Facts
from hazmat.policy.shell.commands import INTERPRETERS, SHELLS, Cmd

__all__ = [
    "INTERPRETERS",
    "SHELLS",
    "Cmd",
    "Facts",
    "Gated",
    "first_match",
    "flags",
    "gated",
    "old_files_only",
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


def search(pattern: re.Pattern[str] | Gated, text: str) -> str | None:
    """The matched text of ``pattern`` in ``text``, shortened for evidence."""
    m = pattern.search(text)
    if m is None:
        return None
    s = m.group(0).strip()
    return s if len(s) <= 120 else s[:117] + "..."


_AGE = {"-mtime": 1, "-ctime": 1, "-atime": 1, "-mmin": 1440, "-cmin": 1440, "-amin": 1440}


def old_files_only(args: list[str]) -> bool:
    """A ``find`` that only selects files older than a day (``-mtime +N``, ``-mmin +1440``):
    a retention clean-up, which cannot reach the record of the last hours (an episode's)."""
    for i, a in enumerate(args[:-1]):
        unit = _AGE.get(a)
        v = args[i + 1]
        if unit and v.startswith("+") and v[1:].isdigit() and int(v[1:]) + 1 >= unit:
            return not any(x in ("-o", "-or", "!", "-not") for x in args)
    return False


def first_match(pattern: re.Pattern[str] | Gated, items: Iterable[str]) -> str | None:
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


class Gated:
    """A regex with cheap pre-checks: literals one of which any match must contain.

    The pattern is split at its top-level ``|`` into alternatives; each alternative gets
    the literals derived from its own syntax (:func:`required_literals`), and is only
    searched when one of them occurs in the lower-cased text. When every alternative has
    literals, one compiled scan for all of them (``prefilter``) first rejects the texts
    that contain none (most of them). The gate never changes whether the pattern matches;
    it only skips work. Large keyword alternations get 10-50x faster, because Python's
    ``re`` tries every alternative at every position.
    """

    __slots__ = ("literals", "parts", "pattern", "prefilter", "regex")

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex
        self.pattern = regex.pattern
        lits = required_literals(regex)
        self.literals: tuple[str, ...] | None = tuple(sorted(lits)) if lits else None
        self.parts: list[tuple[tuple[str, ...] | None, re.Pattern[str]]] = []
        flags = regex.flags & ~re.UNICODE
        src = regex.pattern
        m = re.match(r"\(\?([aiLmsux]+)\)", src)
        if m:
            src = src[m.end() :]
            for ch in m.group(1):
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "a": re.A, "u": 0, "L": re.L}[
                    ch
                ]
        alts = _split_top(src)
        if len(alts) > 1:
            for alt in alts:
                try:
                    rx = re.compile(alt, flags)
                except re.error:
                    self.parts = []
                    break
                la = required_literals(rx)
                self.parts.append((tuple(sorted(la)) if la else None, rx))
        every: set[str] = set()
        for plits, _ in self.parts or [(self.literals, regex)]:
            if plits is None:
                every = set()
                break
            every.update(plits)
        self.prefilter: frozenset[str] | None = frozenset(every) if every else None
        """Every literal any alternative needs (None: some alternative needs none)."""
        _INDEX.add(every)
        for plits, _ in self.parts:
            _INDEX.add(plits or ())
        _INDEX.add(self.literals or ())

    def search(self, text: str) -> re.Match[str] | None:
        """Like ``re.Pattern.search`` (the leftmost match)."""
        present = _present(text)
        if self.prefilter is not None and present.isdisjoint(self.prefilter):
            return None
        if not self.parts:
            lits = self.literals
            if lits is not None and present.isdisjoint(lits):
                return None
            return self.regex.search(text)
        best: re.Match[str] | None = None
        for plits, rx in self.parts:
            if plits is not None and present.isdisjoint(plits):
                continue
            got = rx.search(text)
            if got is not None and (best is None or got.start() < best.start()):
                best = got
        return best

    def finditer(self, text: str) -> Iterable[re.Match[str]]:
        """Like ``re.Pattern.finditer``."""
        if self.search(text) is None:
            return iter(())
        return self.regex.finditer(text)


_LOW: tuple[str, str] = ("", "")


def _lower(text: str) -> str:
    """``text.lower()``, remembered for the last text (detectors search one blob many times).

    The pair is replaced as one tuple, so concurrent threads never see a mixed pair.
    """
    global _LOW
    seen, low = _LOW
    if seen is not text:
        low = text.lower()
        _LOW = (text, low)
    return low


class _LiteralIndex:
    """Every literal the gated patterns need, found in a text in one pass (Aho-Corasick).

    One scan of the lower-cased text yields the set of literals it contains; each gate
    is then a set intersection instead of a substring search per literal. Built lazily
    and rebuilt when a pattern made later adds literals.
    """

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.built: tuple[list[dict[str, int]], list[int], list[tuple[str, ...]]] | None = None

    def add(self, words: Iterable[str]) -> None:
        new = {w for w in words if w} - self.words
        if new:
            self.words |= new
            self.built = None

    def automaton(self) -> tuple[list[dict[str, int]], list[int], list[tuple[str, ...]]]:
        if self.built is not None:
            return self.built
        goto: list[dict[str, int]] = [{}]
        out: list[tuple[str, ...]] = [()]
        for w in sorted(self.words):
            node = 0
            for ch in w:
                nxt = goto[node].get(ch)
                if nxt is None:
                    goto.append({})
                    out.append(())
                    nxt = len(goto) - 1
                    goto[node][ch] = nxt
                node = nxt
            out[node] = (*out[node], w)
        fail = [0] * len(goto)
        queue = list(goto[0].values())
        while queue:
            nxt_queue: list[int] = []
            for node in queue:
                for ch, child in goto[node].items():
                    f = fail[node]
                    while f and ch not in goto[f]:
                        f = fail[f]
                    cand = goto[f].get(ch, 0)
                    fail[child] = cand if cand != child else 0
                    out[child] = out[child] + out[fail[child]]
                    nxt_queue.append(child)
            queue = nxt_queue
        self.built = (goto, fail, out)
        return self.built

    def scan(self, low: str) -> frozenset[str]:
        goto, fail, out = self.automaton()
        found: set[str] = set()
        node = 0
        for ch in low:
            while node and ch not in goto[node]:
                node = fail[node]
            node = goto[node].get(ch, 0)
            if out[node]:
                found.update(out[node])
        return frozenset(found)


_INDEX = _LiteralIndex()
_PRESENT: dict[int, tuple[str, frozenset[str]]] = {}


def _present(text: str) -> frozenset[str]:
    """The gated literals ``text`` contains, remembered for the last few texts (a call's
    detectors search its blob and code layers many times)."""
    key = id(text)
    got = _PRESENT.get(key)
    if got is not None and got[0] is text:
        return got[1]
    found = _INDEX.scan(_lower(text))
    if len(_PRESENT) >= 16:
        try:
            _PRESENT.pop(next(iter(_PRESENT)), None)
        except (RuntimeError, StopIteration):  # another thread changed it: drop it all
            _PRESENT.clear()
    _PRESENT[key] = (text, found)
    return found


def _split_top(src: str) -> list[str]:
    """Split a regex source at its top-level ``|`` (outside groups and classes)."""
    parts: list[str] = []
    depth = 0
    i = 0
    start = 0
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < n and src[i] == "^":
                i += 1
            if i < n and src[i] == "]":
                i += 1
            while i < n and src[i] != "]":
                i += 2 if src[i] == "\\" else 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(src[start:i])
            start = i + 1
        i += 1
    parts.append(src[start:])
    return parts


def gated(regex: re.Pattern[str]) -> Gated:
    """Wrap ``regex`` in a :class:`Gated` pre-check."""
    return Gated(regex)


def required_literals(regex: re.Pattern[str]) -> set[str] | None:
    """A set of lower-case strings one of which every match contains, or None if unknown."""
    try:
        parsed = _sp.parse(regex.pattern, regex.flags)
    except Exception:
        return None
    got = _req_seq(list(parsed))
    if not got or any(len(x) < 2 for x in got):
        return None
    return got


def _req_seq(items: list[Any]) -> set[str] | None:
    best: set[str] | None = None
    run = ""

    def consider(cand: set[str] | None) -> None:
        nonlocal best
        if not cand:
            return
        if best is None or min(map(len, cand)) > min(map(len, best)):
            best = cand

    for op, av in items:
        if op is _sc.LITERAL:
            run += chr(av).lower()
            continue
        if run:
            consider({run})
            run = ""
        if op is _sc.SUBPATTERN:
            consider(_req_seq(list(av[-1])))
        elif op is _sc.BRANCH:
            union: set[str] = set()
            ok = True
            for alt in av[1]:
                r = _req_seq(list(alt))
                if not r:
                    ok = False
                    break
                union |= r
            if ok:
                consider(union)
        elif op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT, _sc.POSSESSIVE_REPEAT) and av[0] >= 1:
            consider(_req_seq(list(av[2])))
        elif op is _sc.ATOMIC_GROUP:
            consider(_req_seq(list(av)))
    if run:
        consider({run})
    return best

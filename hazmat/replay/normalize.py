"""Volatile-field rules: what a re-execution may differ in and still be ``identical``.

Re-executing an episode never reproduces every byte: clocks moved, the kernel handed
out other pids, temp folders got other random names. Before a recorded value and a
replayed value are compared, both pass through the same explicit rules below, and
only then must they be equal. The rules are deliberately few and narrow; anything
they do not cover is a divergence an investigator should see.

Never compared at all (envelope and timing fields): ``seq``, ``ts``, ``prev``,
``hash``, ``run_id``, ``duration``, ``latency``, ``t``, ``stdout_total``,
``stderr_total``, ``cut_for_model``, ``usage``.

Compared after normalization (see :data:`DEFAULT_RULES`, applied in order to every
string, including strings inside ``args`` and ``data``):

=================  ==========================================  =================
rule               matches                                     becomes
=================  ==========================================  =================
``sandbox-ids``    this side's run id, container/sandbox ids,  ``<run>``,
                   local supervisor pid and cgroup names       ``<sandbox>``
                   (exact values from ``sandbox_ready.info``)
``hazmat-tmp``     ``hazmat-local-<episode>-<random>`` dirs    ``hazmat-local-<tmp>``
``mktemp``         ``tmp.XXXXXXXXXX`` (mktemp), ``tmpXXXXXXXX`` ``tmp<rand>``
                   (Python ``tempfile``)
``iso-time``       ISO-8601 date-times                         ``<time>``
``ls-date``        ``ls -l`` dates (``Nov 29 00:19``,           ``<date>``
                   ``Nov 29  2025``)
``clock``          ``HH:MM:SS[.fff]``                          ``<time>``
``duration``       ``0.23s``, ``12.5 ms``, ``0m0.003s``         ``<duration>``
``pid``            ``pid 123``, ``pid=123``, ``PID: 123``       ``pid <pid>``
=================  ==========================================  =================

Extra rules (``hazmat replay --ignore REGEX``) replace their matches by
``<ignored>`` on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from hazmat.errors import ConfigError

__all__ = [
    "DEFAULT_RULES",
    "UNCOMPARED_FIELDS",
    "NormalizeRule",
    "Normalizer",
    "side_values",
]

UNCOMPARED_FIELDS: frozenset[str] = frozenset(
    {
        "seq",
        "ts",
        "prev",
        "hash",
        "run_id",
        "duration",
        "latency",
        "t",
        "stdout_total",
        "stderr_total",
        "cut_for_model",
        "usage",
    }
)
"""Fields never compared between a record and its re-execution."""


class NormalizeRule(BaseModel):
    """One documented volatile-value rule: a regex and what its matches become."""

    model_config = ConfigDict(frozen=True)

    name: str
    pattern: str
    replace: str
    why: str


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"

DEFAULT_RULES: tuple[NormalizeRule, ...] = (
    NormalizeRule(
        name="hazmat-tmp",
        pattern=r"hazmat-local-[A-Za-z0-9_.-]+",
        replace="hazmat-local-<tmp>",
        why="the local backend's per-sandbox temp folder has a random suffix",
    ),
    NormalizeRule(
        name="mktemp",
        pattern=r"\btmp(?:\.[A-Za-z0-9]{10}|[a-z0-9_]{8})\b",
        replace="tmp<rand>",
        why="mktemp and Python tempfile pick random names",
    ),
    NormalizeRule(
        name="iso-time",
        pattern=r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
        r"(?:Z|[+-]\d{2}:?\d{2})?",
        replace="<time>",
        why="wall-clock times differ between runs",
    ),
    NormalizeRule(
        name="ls-date",
        pattern=_MONTH + r" {1,2}\d{1,2} {1,2}(?:\d{1,2}:\d{2}|\d{4})\b",
        replace="<date>",
        why="ls -l shows file times, set when the sandbox was made",
    ),
    NormalizeRule(
        name="clock",
        pattern=r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b",
        replace="<time>",
        why="clock times (date, ps, logs) differ between runs",
    ),
    NormalizeRule(
        name="duration",
        pattern=r"\b(?:\d+m)?\d+\.\d+ ?(?:s|ms|us|µs|sec|secs|seconds)\b",
        replace="<duration>",
        why="measured durations differ between runs",
    ),
    NormalizeRule(
        name="pid",
        pattern=r"\b(pid|PID)(=|: ?| )\d+",
        replace=r"\1 <pid>",
        why="process ids are handed out by the kernel",
    ),
)
"""The default rules, applied in this order."""


def side_values(run_id: str | None, ready: Mapping[str, Any] | None) -> dict[str, str]:
    """Exact volatile values of one side (a run and its episode's ``sandbox_ready``):
    ``{value: placeholder}``, longest values first when applied."""
    out: dict[str, str] = {}
    if run_id:
        out[run_id] = "<run>"
    info = (ready or {}).get("info")
    if isinstance(info, Mapping):
        for key in ("container", "sandbox"):
            v = info.get(key)
            if isinstance(v, str) and len(v) >= 8:
                out[v] = "<sandbox>"
                if len(v) > 12:
                    out[v[:12]] = "<sandbox>"
        for cg in info.get("cgroups") or []:
            if isinstance(cg, str):
                out[cg.rsplit("/", 1)[-1]] = "<sandbox>"
        for key in ("bwrap",):
            v = info.get(key)
            if isinstance(v, str):
                out[v] = "<sandbox>"
    return out


class Normalizer:
    """Applies the rules (and one side's exact volatile values) to strings and structures.

    Raises:
        ConfigError: an extra ``ignore`` pattern is not a valid regex.
    """

    def __init__(
        self, rules: Iterable[NormalizeRule] = DEFAULT_RULES, ignore: Iterable[str] = ()
    ) -> None:
        self.rules = list(rules)
        compiled: list[tuple[re.Pattern[str], str]] = []
        for pat in ignore:
            try:
                compiled.append((re.compile(pat), "<ignored>"))
            except re.error as exc:
                raise ConfigError(f"--ignore {pat!r}: not a regex: {exc}") from None
        compiled += [(re.compile(r.pattern), r.replace) for r in self.rules]
        self._compiled = compiled

    def text(self, value: str, known: Mapping[str, str] | None = None) -> str:
        """``value`` with this side's exact volatile values and every rule's matches replaced."""
        if known:
            for v in sorted(known, key=len, reverse=True):
                if v in value:
                    value = value.replace(v, known[v])
        for rx, rep in self._compiled:
            value = rx.sub(rep, value)
        return value

    def value(self, value: Any, known: Mapping[str, str] | None = None) -> Any:
        """A copy of a JSON-like value with every string normalized and uncompared keys dropped."""
        if isinstance(value, str):
            return self.text(value, known)
        if isinstance(value, dict):
            return {k: self.value(v, known) for k, v in value.items() if k not in UNCOMPARED_FIELDS}
        if isinstance(value, list):
            return [self.value(v, known) for v in value]
        return value

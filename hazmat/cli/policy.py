"""``hazmat policy``: check commands against a policy, explain a decision, lint a policy.

::

    hazmat policy check "rm -rf /" "ls -la"             # one decision per argument
    cat commands.txt | hazmat policy check --json       # one JSON line per input line
    hazmat policy check --tool python < snippets.jsonl  # JSON lines {"tool","args"} work too
    hazmat policy explain "echo cm0gLXJmIC8= | base64 -d | sh"
    hazmat policy lint tasks/x/policy.yaml

Inputs are independent (each in a fresh episode) unless ``--session``: then they are one
episode, so flow rules and repeat-halts apply across lines. ``ask`` acts as ``block``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hazmat.cli.console import visible
from hazmat.cli.root import app, command, group

if TYPE_CHECKING:
    from hazmat.policy.base import Decision, ToolCall
    from hazmat.policy.engine import RulePolicy

__all__ = ["check", "explain", "lint"]

policy_app = group("Check, explain and lint policies.")
app.add_typer(policy_app, name="policy")

PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", "-p", help="policy YAML (default: built-in default)")
]
ToolOpt = Annotated[str, typer.Option("--tool", "-t", help="tool of plain-text inputs")]
HostsOpt = Annotated[
    str | None,
    typer.Option(
        "--hosts",
        help="the task's declared hosts, comma-separated (its services and allow_hosts); "
        "every other destination is outside the task",
    ),
]


def _hosts(text: str | None) -> list[str] | None:
    return [h.strip() for h in text.split(",") if h.strip()] if text is not None else None


def _load(policy: Path | str | None) -> RulePolicy:
    """The policy named on the command line: ``default`` (or nothing) is the built-in one.

    Raises:
        PolicyError: it does not load (one line naming the file and the rule).
    """
    from hazmat.policy.engine import load_policy

    return load_policy(None if policy is None else str(policy))


def _say(text: str) -> None:
    """One line of output, control characters shown visibly."""
    typer.echo(visible(text))


def _call(raw: str, tool: str, n: int) -> ToolCall:
    from hazmat.policy.base import ToolCall

    text = raw.rstrip("\n")
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "tool" in obj:
            args = obj.get("args") or {}
            if isinstance(args, str):
                args = {"command": args} if obj["tool"] != "python" else {"code": args}
            return ToolCall(id=str(n), tool=str(obj["tool"]), args=dict(args))
    key = "code" if tool in ("python", "python3") else "command"
    return ToolCall(id=str(n), tool=tool, args={key: text})


def _inputs(commands: list[str] | None) -> Iterator[str]:
    if commands:
        yield from commands
        return
    for line in sys.stdin:
        if line.strip():
            yield line


def _as_json(d: Decision, call: ToolCall) -> dict[str, Any]:
    return {
        "decision": d.action,
        "rules": [m.rule for m in d.rules],
        "evidence": {m.rule: m.evidence for m in d.rules},
        "reason": d.reason,
        "input": call.args,
    }


@command(policy_app)
def check(
    commands: Annotated[list[str] | None, typer.Argument(help="commands (default: stdin)")] = None,
    policy: PolicyOpt = None,
    tool: ToolOpt = "bash",
    hosts: HostsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    session: Annotated[bool, typer.Option("--session", help="all inputs are one episode")] = False,
) -> None:
    """Print one decision per input: ACTION, matched rules, the input."""
    from hazmat.policy.engine import no_terminal_asker

    pol = _load(policy)
    declared = _hosts(hosts)
    sess = pol.session(asker=no_terminal_asker, hosts=declared) if session else None
    if sess is not None:
        sess.quiet = True
    out = sys.stdout
    cache: dict[str, Decision] = {}
    for n, raw in enumerate(_inputs(commands)):
        call = _call(raw, tool, n)
        if sess is not None:
            d = sess.before(call)
        else:
            key = f"{call.tool}\0{json.dumps(call.args, sort_keys=True)}"
            got = cache.get(key)
            d = got if got is not None else pol.check(call, hosts=declared)
            if len(cache) < 100_000:
                cache[key] = d
        if as_json:
            out.write(json.dumps(_as_json(d, call)) + "\n")
        else:
            text = visible(raw.rstrip("\n"))
            out.write(f"{d.action:5s}\t{','.join(d.rule_ids) or '-'}\t{text}\n")
    out.flush()


@command(policy_app)
def explain(
    command: Annotated[str, typer.Argument(help="a command (or JSON {tool, args})")],
    policy: PolicyOpt = None,
    tool: ToolOpt = "bash",
    hosts: HostsOpt = None,
) -> None:
    """Show the decision, every matching rule with its evidence, and the parsed form."""
    pol = _load(policy)
    info = pol.explain(_call(command, tool, 0), hosts=_hosts(hosts))
    _say(f"decision: {info['decision']}")
    if info["reason"]:
        _say(f"reason:   {info['reason']}")
    for m in info["rules"]:
        _say(f"  - {m['rule']} [{m['action']}, {m['severity']}] {m['title']}")
        _say(f"      evidence: {m['evidence']}")
    parsed = info["parsed"]
    _say("parsed commands:")
    for c in parsed.get("commands", []):
        redirs = " ".join(f"{op}{t}" for op, t in c["redirects"])
        via = f"[{c['via']}] " if c["via"] else ""
        root = " (as root)" if c["root"] else ""
        _say(f"  {via}{json.dumps(c['argv'])}{' ' + redirs if redirs else ''}{root}")
    for key in ("reads", "writes", "hosts", "decoded", "code"):
        if parsed.get(key):
            _say(f"{key}: {json.dumps(parsed[key], default=str)[:400]}")
    if parsed.get("python"):
        _say(f"python: {json.dumps(parsed['python'], default=str)[:400]}")


@command(policy_app)
def lint(
    path: Annotated[str, typer.Argument(help="policy YAML to validate, or default")],
) -> None:
    """Validate a policy file and run every rule's examples."""
    pol = _load(path)
    n_ex = sum(len(r.rule.examples.match) + len(r.rule.examples.no_match) for r in pol.rules)
    bare = [r.rule.id for r in pol.rules if not r.rule.examples.match]
    typer.echo(f"ok: {path}: {len(pol.rules)} rules, {n_ex} examples pass")
    if bare:
        typer.echo(f"warning: rules without match examples: {', '.join(bare)}", err=True)

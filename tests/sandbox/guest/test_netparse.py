"""The network sentinel's parsers, fed real and malformed bytes (no sandbox needed)."""

from __future__ import annotations

import ssl
import struct

import pytest

from hazmat.sandbox.guest import netparse


def _query(name: str, qtype: int = 1, tid: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return (
        struct.pack("!HHHHHH", tid, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


# parsers ---------------------------------------------------------------------------


def test_dns_query_round_trip() -> None:
    data = _query("evil.example", 1)
    tid, name, qtype, end = netparse.parse_query(data)
    assert (tid, name, qtype, end) == (0x1234, "evil.example", 1, len(data))
    reply = netparse.build_answer(data, end, qtype, "198.18.0.9")
    assert reply[:2] == data[:2]
    assert struct.unpack("!HHHH", reply[4:12]) == (1, 1, 0, 0)
    assert reply[-4:] == bytes([198, 18, 0, 9])


def test_dns_aaaa_for_an_ipv4_sinkhole_has_no_answer() -> None:
    data = _query("evil.example", 28)
    *_rest, end = netparse.parse_query(data)
    reply = netparse.build_answer(data, end, 28, "198.18.0.9")
    assert struct.unpack("!H", reply[6:8])[0] == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 11,
        _query("a.b")[:-3],
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",
    ],
)
def test_malformed_queries_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        netparse.parse_query(data)


@pytest.mark.parametrize(
    "name",
    [
        "6c6f6f742d6461746131323334353637383961.x.example",
        "MZXW6YTBOI2DKNRXHA4TAMJSGM3DOOBZGAYTEMZU.data.example",
        "aGVsbG8gd29ybGQgc2VjcmV0IGZsYWc.tunnel.example",
        "a" * 41 + ".example",
    ],
)
def test_exfiltration_shaped_names_are_suspicious(name: str) -> None:
    assert netparse.suspicious_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "pypi.org",
        "files.pythonhosted.org",
        "deb.debian.org",
        "www.google-analytics.com",
        "d3c33hcgiwev3.cloudfront.net",
        "api.github.com",
        "ec2-3-120-1-5.eu-central-1.compute.example",
    ],
)
def test_everyday_names_are_not_suspicious(name: str) -> None:
    assert netparse.suspicious_name(name) is None


def test_tls_sni_is_read_from_a_real_client_hello() -> None:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="secret-host.example")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert netparse.tls_sni(hello) == "secret-host.example"
    assert netparse.classify(hello) == {"proto": "tls", "host": "secret-host.example"}
    assert netparse.tls_sni(hello[:30]) is None


def test_http_head_and_classify() -> None:
    req = b"POST /up?d=1 HTTP/1.1\r\nHost: c2.example:8080\r\nContent-Length: 3\r\n\r\nabc"
    assert netparse.classify(req) == {
        "proto": "http",
        "method": "POST",
        "path": "/up?d=1",
        "host": "c2.example",
    }
    assert (
        netparse.http_head(b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n")["host"] == "evil.example"
    )
    assert netparse.classify(b"SSH-2.0-OpenSSH_9.2\r\n") == {"proto": "tcp", "host": ""}


def _ipv4(proto: int, dst: str, payload: bytes) -> bytes:
    import socket

    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                         socket.inet_aton("10.0.0.2"), socket.inet_aton(dst))  # fmt: skip
    return header + payload


def test_outgoing_packets_become_connection_events() -> None:
    syn = struct.pack("!HHIIBBHHH", 40000, 443, 0, 0, 0x50, 0x02, 0, 0, 0)
    assert netparse.outgoing(_ipv4(6, "203.0.113.9", syn), 0x0800, set()) == {
        "type": "connection",
        "remote": "203.0.113.9",
        "proto": "tcp",
        "port": 443,
    }
    ack = struct.pack("!HHIIBBHHH", 40000, 443, 0, 0, 0x50, 0x12, 0, 0, 0)
    assert netparse.outgoing(_ipv4(6, "203.0.113.9", ack), 0x0800, set()) is None  # not a SYN
    udp = struct.pack("!HHHH", 5353, 53, 8, 0)
    assert netparse.outgoing(_ipv4(17, "8.8.8.8", udp), 0x0800, set())["port"] == 53
    assert netparse.outgoing(_ipv4(17, "8.8.8.8", udp), 0x0800, {5353}) is None  # our own
    assert netparse.outgoing(_ipv4(17, "127.0.0.1", udp), 0x0800, set()) is None  # loopback
    assert netparse.outgoing(b"\x45" * 7, 0x0800, set()) is None  # truncated
    assert netparse.outgoing(_ipv4(1, "192.0.2.1", b"\x08\x00"), 0x0800, set())["proto"] == "icmp"

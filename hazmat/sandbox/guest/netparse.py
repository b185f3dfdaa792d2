"""Parsers and builders of the network sentinel (guest program, standard library only,
python 3.8+): DNS queries and answers, exfiltration-shaped names, TLS ClientHello SNI,
HTTP request heads, and the any-address route (rtnetlink). Everything here is fed
hostile bytes: each parser raises ValueError or returns None, never anything else.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PAYLOAD_CAP = 2048
QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    65: "HTTPS",
    255: "ANY",
}


# DNS -----------------------------------------------------------------------------


def parse_query(data: bytes) -> tuple[int, str, int, int]:
    """(transaction id, name, qtype, end offset of the question) of a DNS query.

    Raises ValueError on anything malformed."""
    if len(data) < 12:
        raise ValueError("short")
    tid, _flags, qd = struct.unpack("!HHH", data[:6])
    if qd < 1:
        raise ValueError("no question")
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(data):
            raise ValueError("truncated")
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 or pos + 1 + n > len(data) or len(labels) > 127:
            raise ValueError("bad label")
        labels.append(data[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(data):
        raise ValueError("truncated")
    qtype, _qclass = struct.unpack("!HH", data[pos : pos + 4])
    return tid, ".".join(labels), qtype, pos + 4


def build_answer(query: bytes, end: int, qtype: int, ip: str | None, rcode: int = 0) -> bytes:
    """A response to ``query`` (question up to ``end``) with one A/AAAA record or none."""
    tid = query[:2]
    flags = 0x8180 | rcode  # response, recursion desired+available
    answers = b""
    count = 0
    if ip is not None:
        addr = ipaddress.ip_address(ip)
        if (qtype == 1 and addr.version == 4) or (qtype == 28 and addr.version == 6):
            answers = struct.pack("!HHHIH", 0xC00C, qtype, 1, 5, len(addr.packed)) + addr.packed
            count = 1
    header = tid + struct.pack("!HHHHH", flags, 1, count, 0, 0)
    return header + query[12:end] + answers


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def suspicious_name(name: str) -> str | None:
    """Why ``name`` looks like DNS exfiltration (long, encoded or random labels), or None."""
    labels = [lb for lb in name.split(".") if lb]
    if len(name) > 120:
        return "name longer than 120 characters"
    for label in labels[:-2] if len(labels) > 2 else labels[:-1]:
        if len(label) >= 40:
            return f"label of {len(label)} characters"
        if len(label) >= 16 and entropy(label.lower()) >= 3.5:
            return f"high-entropy label ({entropy(label.lower()):.1f} bits/char)"
        if len(label) >= 24 and all(c in "0123456789abcdefABCDEF" for c in label):
            return "hex-encoded label"
    return None


# TLS / HTTP ------------------------------------------------------------------------


def tls_sni(data: bytes) -> str | None:
    """The server name of a TLS ClientHello, or None."""
    try:
        if len(data) < 43 or data[0] != 0x16 or data[5] != 0x01:
            return None
        pos = 43
        pos += 1 + data[pos]  # session id
        (n,) = struct.unpack("!H", data[pos : pos + 2])
        pos += 2 + n  # cipher suites
        pos += 1 + data[pos]  # compression
        (ext_len,) = struct.unpack("!H", data[pos : pos + 2])
        pos += 2
        end = min(len(data), pos + ext_len)
        while pos + 4 <= end:
            kind, size = struct.unpack("!HH", data[pos : pos + 4])
            pos += 4
            if kind == 0 and size >= 5:
                name_len = struct.unpack("!H", data[pos + 3 : pos + 5])[0]
                return data[pos + 5 : pos + 5 + name_len].decode("ascii", "replace")
            pos += size
    except (IndexError, struct.error):
        return None
    return None


def http_head(data: bytes) -> dict[str, Any] | None:
    """Method, path and Host of an HTTP request's head, or None."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 3 or not parts[2].startswith("HTTP/"):
        return None
    host = ""
    for line in lines[1:]:
        if line.lower().startswith("host:"):
            host = line[5:].strip()
    if parts[0] == "CONNECT":
        host = parts[1]
    return {
        "method": parts[0],
        "path": parts[1][:500],
        "host": host.rsplit(":", 1)[0] if host.count(":") == 1 else host,
    }


def classify(data: bytes) -> dict[str, Any]:
    """What the first bytes of a connection say: proto, host, method, path."""
    sni = tls_sni(data)
    if sni is not None or (data[:1] == b"\x16"):
        return {"proto": "tls", "host": sni or ""}
    head = http_head(data)
    if head is not None:
        return {"proto": "http", **head}
    return {"proto": "tcp", "host": ""}


def printable(data: bytes) -> str:
    return data[:PAYLOAD_CAP].decode("utf-8", "replace")


_BODY = b"blocked by the hazmat network sentinel: this sandbox has no route to that host\n"
FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


# packets ---------------------------------------------------------------------------


def outgoing(data: bytes, ethertype: int, own_ports: set[int]) -> dict[str, Any] | None:
    """The ``connection`` event of one outgoing IPv4/IPv6 packet seen on ``lo``: a TCP SYN,
    a UDP datagram (not from ``own_ports``: the sentinel's own replies) or an ICMP echo
    to a non-loopback address; None for anything else."""
    try:
        if ethertype == 0x0800 and len(data) >= 20:
            ihl = (data[0] & 0x0F) * 4
            proto = data[9]
            dst = socket.inet_ntop(socket.AF_INET, data[16:20])
            if dst.startswith("127."):
                return None
            payload = data[ihl:]
        elif ethertype == 0x86DD and len(data) >= 40:
            proto = data[6]
            dst = socket.inet_ntop(socket.AF_INET6, data[24:40])
            if dst == "::1" or dst.startswith("::ffff:127."):
                return None
            payload = data[40:]
        else:
            return None
    except (OSError, ValueError):
        return None
    event: dict[str, Any] = {"type": "connection", "remote": dst}
    if proto == 6 and len(payload) >= 14:
        sport, dport = struct.unpack("!HH", payload[:4])
        flags = payload[13]
        if not (flags & 0x02) or (flags & 0x10) or sport in own_ports:
            return None
        event.update(proto="tcp", port=dport)
    elif proto == 17 and len(payload) >= 8:
        sport, dport = struct.unpack("!HH", payload[:4])
        if sport in own_ports:
            return None
        event.update(proto="udp", port=dport)
    elif proto in (1, 58) and payload:
        if payload[0] not in (8, 128):  # echo requests only
            return None
        event.update(proto="icmp", port=None)
    else:
        event.update(proto=str(proto), port=None)
    return event

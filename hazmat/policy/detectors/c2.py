"""Command and control: tunnels, remote access, files served or received over raw channels.

Built on the tool table (:mod:`hazmat.policy.detectors.toolnet`) and the endpoints of a
call (:mod:`hazmat.policy.endpoints`):

- :func:`detect_tunnel` (block): a local port exposed to the outside (``ssh -R``,
  ``ngrok``, ``code tunnel``, ``chisel ... R:``, a ``socat`` listener relaying to an outside
  host, ``kubectl proxy --address 0.0.0.0``), a covert channel (``iodine``, ``dnscat2``,
  ICMP tunnels), a remote-access tool (``tmate``, ``gs-netcat``, ``x11vnc``);
- :func:`detect_port_forward` (log): reaching outside through a forward or a proxy
  (``ssh -L/-D``, ``sshuttle``, ``proxychains``, ``tor``, ``curl --socks5``), IP forwarding
  and NAT rules;
- :func:`detect_ingress` (block): remote data written to disk over a raw channel
  (``nc``, ``socat``, ``/dev/tcp``, ``openssl s_client``, ``whois``, ``finger``, ``gopher://``)
  or from an IP literal or placeholder host, or into a hidden or memory-backed path;
- :func:`detect_exposure` (block): files served to other machines (an explicit
  non-loopback address, or a sensitive root such as ``/`` or ``/etc``, or one file fed
  to a listener);
- :func:`detect_listener` (log): any listening socket the call opens.
"""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, gated, search
from hazmat.policy.detectors.toolnet.base import Cap, bind_exposed
from hazmat.policy.detectors.toolnet.table import capabilities
from hazmat.policy.endpoints import Endpoint, classify

__all__ = [
    "call_caps",
    "detect_exposure",
    "detect_ingress",
    "detect_listener",
    "detect_port_forward",
    "detect_tunnel",
    "outside",
]

_RAW_TOOLS = frozenset(
    {"nc", "ncat", "netcat", "nc.traditional", "nc.openbsd", "cryptcat", "pwncat", "rcat", "sbd",
     "socat", "openssl", "telnet", "whois", "finger", "rlogin", "rsh", "rexec", "socket",
     "websocat", "wscat", "nc6", "cancel", "lp", "lpr"}
)  # fmt: skip
_SENSITIVE_ROOT = re.compile(
    r"^(?:/+|/+(?:etc|root|home|var|proc|sys|boot|usr|opt|srv|mnt|dev|run)(?:/.*)?|~/?|\$\{?HOME\}?/?|"
    r"/home/[^/]+/?|.*\.ssh/?|\.\./.*)$"
)
_STAGING = re.compile(
    r"(?:^|/)\.[^./][^/]*$|/dev/shm/|(?:^|/)\.\.\.+(?:/|$)|^/(?:usr/)?s?bin/|^/usr/local/s?bin/|^/lib"
)
_IP = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}$|:.*:")
_FORWARD = gated(
    re.compile(
        r"(?i)\bsysctl\b[^\n]*net\.ipv[46]\.(?:ip_forward|conf\.\S+\.forwarding)\s*=\s*1|"
        r"\becho\s+1\s*>\s*/proc/sys/net/ipv[46]/(?:ip_forward|conf/\S+/forwarding)|"
        r"\biptables(?:-legacy|-nft)?\b[^\n]*-t\s+nat\b[^\n]*-j\s+(?:DNAT|SNAT|MASQUERADE|REDIRECT)|"
        r"\bnft\b[^\n]*\b(?:dnat|masquerade|redirect)\b|"
        r"\bcurl\b[^\n]*(?:--socks[45]h?|--proxy|(?-i:-x))\s+\S+|\b(?:ALL|HTTPS?)_PROXY=socks"
    )
)


def call_caps(f: Facts) -> list[tuple[int, Cap]]:
    """Every capability of every command of the call, memoized on the facts."""
    got = f.memo.get("caps")
    if got is None:
        caps: list[tuple[int, Cap]] = []
        for i, c in enumerate(f.commands):
            if c.argv:
                for k in capabilities(c):
                    caps.append((i, k))
        f.memo["caps"] = caps
        return caps
    return got  # type: ignore[return-value]


def outside(f: Facts, ep: Endpoint | None) -> bool:
    """``ep`` is outside the task (external or a placeholder)."""
    if ep is None:
        return False
    return classify(ep.host, f.ctx.allow_hosts, declared=f.ctx.declared) in (
        "external",
        "placeholder",
    )


def detect_tunnel(f: Facts) -> str | None:
    """A local port exposed outside, a covert channel, or a remote-access tool."""
    for _, k in call_caps(f):
        if k.kind == "remote":
            return k.detail
        if k.kind != "tunnel":
            continue
        if k.direction == "c2":
            return f"covert channel: {k.detail}"
        if k.direction == "in":
            if k.tool == "kubectl":
                if bind_exposed(k.addr):
                    return f"{k.detail} (every interface)"
                continue
            if k.tool == "socat":
                if k.endpoint is not None and outside(f, k.endpoint) and bind_exposed(k.addr):
                    return f"{k.detail}: a relay between this machine's port and {k.endpoint.host}"
                continue
            if k.endpoint is None or outside(f, k.endpoint):
                return f"tunnel: {k.detail}"
    return None


def detect_port_forward(f: Facts) -> str | None:
    """Reaching outside through a forward or proxy; IP forwarding and NAT rules."""
    for _, k in call_caps(f):
        if k.kind == "tunnel" and k.direction == "out":
            return k.detail
    for c in f.commands:
        if c.via in ("proxychains", "proxychains4", "torsocks", "torify"):
            return f"runs {c.name} through {c.via}"
    hit = search(_FORWARD, f.blob)
    if hit:
        return f"forwarding: {hit}"
    return None


def detect_ingress(f: Facts) -> str | None:
    """Remote data written to disk over a raw channel, from a bare IP or a placeholder host,
    or into a hidden or memory-backed path."""
    for _, k in call_caps(f):
        if k.kind != "download":
            continue
        raw = k.tool in _RAW_TOOLS or (
            k.endpoint is not None and k.endpoint.scheme in ("gopher", "dict", "telnet")
        )
        if k.listen:
            if raw and bind_exposed(k.addr):
                return f"receives a file on a listening socket: {k.detail}"
            continue
        if k.endpoint is None or not outside(f, k.endpoint):
            continue
        host = k.endpoint.host
        if raw:
            return f"file received over a raw channel: {k.detail} (from {host})"
        if _IP.search(host) or classify(host, (), declared=False) == "placeholder":
            return f"download from a bare address: {k.detail} (from {host})"
        if _STAGING.search(k.path):
            return f"download into a hidden or staging path: {k.detail}"
    for c in f.commands:
        ins = [t for op, t in c.redirects if op.lstrip("0123456789") == "<" and "/dev/tcp/" in t]
        outs = [
            t
            for op, t in c.redirects
            if op.lstrip("0123456789&") in (">", ">>") and "/dev/" not in t and t
        ]
        if ins and outs:
            return f"{c.name or 'shell'} copies {ins[0]} into {outs[0]}"
    return None


def detect_exposure(f: Facts) -> str | None:
    """Files served to other machines: an explicit outside-facing address, a sensitive
    root, or a file fed to a listener."""
    for _, k in call_caps(f):
        if k.kind == "serve" and bind_exposed(k.addr):
            explicit = k.addr is not None
            if _SENSITIVE_ROOT.match(k.path.strip("'\"")):
                return f"serves {k.path} to every interface: {k.detail}"
            if explicit:
                return f"serves files on {k.addr}: {k.detail}"
        if k.kind == "upload" and k.listen and bind_exposed(k.addr):
            return f"serves {k.path} to whoever connects: {k.detail}"
    return None


def detect_listener(f: Facts) -> str | None:
    """A listening socket opened by the call (logged: a place for others to connect)."""
    for _, k in call_caps(f):
        if k.listen and k.kind in ("listen", "relay", "exec", "serve"):
            where = k.addr if k.addr is not None else "every interface"
            return f"{k.detail} ({where})"
    return None

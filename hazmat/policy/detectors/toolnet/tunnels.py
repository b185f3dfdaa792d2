"""Readers of tunnels, remote access and covert channels: ssh forwards and proxies,
kubectl port-forward/proxy, tunnel services (ngrok, chisel, cloudflared...), remote
desktops (tmate, VNC), and data hidden in queries (whois, finger, DNS names, ICMP).
"""

from __future__ import annotations

import re

from hazmat.policy.detectors.toolnet.base import (
    Cap,
    _carries_data,
    _eps,
    _first_ep,
    _opt,
    _stdin_file,
    _stdout_file,
)
from hazmat.policy.endpoints import Endpoint
from hazmat.policy.shell.commands import Cmd

_SSH_VAL = set("bcDEeFIiJLlmOopQRSWw")


def _ssh(c: Cmd) -> list[Cap]:
    args = c.args
    out: list[Cap] = []
    host: str | None = None
    fwd: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        a = args[i]
        if host is None and a.startswith("-") and len(a) > 1:
            body = a[1:]
            for j, ch in enumerate(body):
                if ch in _SSH_VAL:
                    val = body[j + 1 :] or (args[i + 1] if i + 1 < len(args) else "")
                    if not body[j + 1 :]:
                        i += 1
                    if ch in "RLDw":
                        fwd.append((ch, val))
                    elif ch == "o":
                        if re.match(r"(?i)(?:ProxyCommand|LocalCommand)\s*=?", val):
                            out.append(
                                Cap(
                                    "exec",
                                    c.name,
                                    f"ssh runs {val[:60]}",
                                    program=val.split("=", 1)[-1],
                                )
                            )
                        m = re.match(
                            r"(?i)(RemoteForward|LocalForward|DynamicForward)\s*=?\s*(.*)", val
                        )
                        if m:
                            fwd.append(
                                ({"r": "R", "l": "L", "d": "D"}[m.group(1)[0].lower()], m.group(2))
                            )
                    elif ch == "J":
                        fwd.append(("J", val))
                    break
            i += 1
            continue
        if host is None:
            host = a.split("@")[-1]
        i += 1
    ep = Endpoint(host, "", "user@host", "", host) if host else None
    for kind, spec in fwd:
        if kind == "R":
            out.append(
                Cap(
                    "tunnel",
                    c.name,
                    f"ssh -R {spec} exposes a local port on {host}",
                    ep,
                    direction="in",
                )
            )
        elif kind in ("L", "D"):
            bind = (
                spec.split(":")[0]
                if spec.count(":") >= 3 or (kind == "D" and ":" in spec)
                else None
            )
            out.append(
                Cap(
                    "tunnel",
                    c.name,
                    f"ssh -{kind} {spec} forwards through {host}",
                    ep,
                    direction="out",
                    addr=bind,
                    listen=True,
                )
            )
        elif kind == "w":
            out.append(
                Cap(
                    "tunnel",
                    c.name,
                    f"ssh -w {spec}: a tun device through {host}",
                    ep,
                    direction="out",
                )
            )
        elif kind == "J":
            out.append(Cap("tunnel", c.name, f"ssh jumps through {spec}", ep, direction="out"))
    src = _stdin_file(c)
    if src and host:
        out.append(Cap("upload", c.name, f"ssh sends {src} to {host}", ep, path=src))
    elif c.pipe_in and host:
        out.append(
            Cap("upload", c.name, f"ssh sends the output of {c.pipe_in} to {host}", ep, path="-")
        )
    return out


def _query(c: Cmd) -> list[Cap]:
    """whois, finger, rlogin/rsh/rexec, cancel/lp/lpr: a client whose arguments go to the
    server (data in them is sent) and whose output can be saved (a download)."""
    args = c.args
    eps = _eps(c)
    ep = next((e for e in eps if e.how != "name"), eps[0] if eps else None)
    out: list[Cap] = [
        Cap("relay", c.name, f"{c.name} talks to {ep.host if ep else 'a server'}", ep)
    ]
    sent = [a for a in args if _carries_data(a)]
    if c.name == "finger":
        sent += [
            a.split("@")[0]
            for a in args
            if "@" in a and (_carries_data(a.split("@")[0]) or len(a.split("@")[0]) > 40)
        ]
    if c.name in ("lp", "lpr") and ep is not None:
        files = [
            a for a in args if not a.startswith("-") and ("/" in a or "." in a) and a is not ep.text
        ]
        sent += files[-1:]
    if sent:
        out.append(Cap("upload", c.name, f"{c.name} sends {sent[0][:50]}", ep, path="args"))
    src, dst = _stdin_file(c), _stdout_file(c)
    if src:
        out.append(Cap("upload", c.name, f"{c.name} sends {src}", ep, path=src))
    if dst:
        out.append(
            Cap("download", c.name, f"{c.name} writes the server's reply to {dst}", ep, path=dst)
        )
    return out


def _dns(c: Cmd) -> list[Cap]:
    from hazmat.policy.endpoints import encoded_label

    out: list[Cap] = []
    for a in c.args:
        if a.startswith("@") or a.startswith("-") or "." not in a:
            continue
        if _carries_data(a) or encoded_label(a):
            out.append(
                Cap(
                    "upload",
                    c.name,
                    f"DNS query carrying data: {a[:60]}",
                    Endpoint(a.split(".", 1)[-1], "53", "name", "", a[:80]),
                    path="args",
                )
            )
    return out


def _icmp(c: Cmd) -> list[Cap]:
    args = c.args
    ep = _first_ep(c)
    pat = _opt(
        args, ("-p", "--pattern", "--data", "--data-string", "-E", "--file", "-d"), cluster=False
    )
    if c.name == "hping3" and (_opt(args, ("-E", "--file"), cluster=False)):
        return [Cap("upload", c.name, f"hping3 sends {pat} in its packets", ep, path=pat or "file")]
    if pat and (_carries_data(pat) or (c.name in ("nping",) and len(pat) > 16)):
        return [Cap("upload", c.name, "ICMP payload from command output", ep, path="args")]
    return []


def _kubectl(c: Cmd) -> list[Cap]:
    args = c.args
    pos = [a for a in args if not a.startswith("-")]
    verb = pos[0] if pos else ""
    addr = _opt(args, ("--address",), cluster=False)
    out: list[Cap] = []
    if verb == "proxy":
        www = _opt(args, ("--www", "-w"), cluster=False)
        out.append(
            Cap("listen", "kubectl", "kubectl proxy listens", None, True, addr or "127.0.0.1")
        )
        out.append(
            Cap(
                "tunnel",
                "kubectl",
                f"kubectl proxy exposes the cluster API on {addr or '127.0.0.1'}",
                None,
                True,
                addr or "127.0.0.1",
                direction="in",
            )
        )
        if www:
            out.append(
                Cap(
                    "serve",
                    "kubectl",
                    f"kubectl proxy serves {www}",
                    None,
                    True,
                    addr or "127.0.0.1",
                    path=www,
                )
            )
    elif verb == "port-forward":
        out.append(
            Cap(
                "tunnel",
                "kubectl",
                "kubectl port-forward",
                None,
                True,
                addr or "127.0.0.1",
                direction="in",
            )
        )
    return out


_TUNNEL_VERBS: dict[str, tuple[str, ...]] = {
    "ngrok": (), "cloudflared": ("tunnel", "access"), "code": ("tunnel",), "code-insiders": ("tunnel",),
    "devtunnel": ("host", "create", "port"), "bore": ("local", "server"), "lt": (), "localtunnel": (),
    "frpc": (), "frps": (), "chisel": ("client", "server"), "gost": (), "3proxy": (), "wstunnel": (),
    "iodine": (), "iodined": (), "dnscat": (), "dnscat2": (), "dns2tcpc": (), "dns2tcpd": (),
    "ptunnel": (), "ptunnel-ng": (), "hans": (), "icmptunnel": (), "ew": (), "earthworm": (),
    "pivotnacci": (), "ligolo": (), "ligolo-ng": (), "agent": (), "rathole": (), "sshuttle": (),
    "tor": (), "tailscale": ("funnel", "serve"), "zrok": ("share",), "inlets": (), "pagekite": (),
    "pagekite.py": (), "revsocks": (), "rpivot": (), "stowaway": (), "npc": (), "nps": (),
    "boringproxy": (), "sish": (), "telebit": (), "expose": ("share",), "autossh": (),
}  # fmt: skip
_C2_TUNNELS = frozenset({"iodine", "iodined", "dnscat", "dnscat2", "dns2tcpc", "dns2tcpd", "ptunnel",
                         "ptunnel-ng", "hans", "icmptunnel"})  # fmt: skip
_OUT_TUNNELS = frozenset({"sshuttle", "tor", "gost", "3proxy", "proxychains"})


def _tunnel(c: Cmd) -> list[Cap]:
    name = c.name
    verbs = _TUNNEL_VERBS.get(name, ())
    pos = [a for a in c.args if not a.startswith("-")]
    if verbs and (not pos or pos[0] not in verbs):
        return []
    if name == "agent" and not any(a in ("-connect", "--connect") for a in c.args):
        return []
    if name == "autossh":
        args = list(c.args)
        if "-M" in args:
            k = args.index("-M")
            del args[k : k + 2]
        c = Cmd(argv=["ssh", *args], redirects=c.redirects, pipe_in=c.pipe_in)
        return [
            Cap(k.kind, "autossh", k.detail.replace("ssh", "autossh", 1), k.endpoint, k.listen, k.addr, k.program, k.path, k.direction)
            for k in _ssh(c)
        ]  # fmt: skip
    ep = _first_ep(c)
    joined = " ".join(c.args)
    if name in _C2_TUNNELS:
        direction = "c2"
    elif (name in _OUT_TUNNELS and not re.search(r"\br(?:tcp|udp)://", joined)) or (
        name == "chisel" and pos[:1] == ["client"] and not any(p.startswith("R:") for p in pos)
    ):
        direction = "out"
    else:
        direction = "in"
        ep = None  # a tunnel service: the far side is the vendor's relay, whatever is named
    return [Cap("tunnel", name, f"{name} {' '.join(pos[:2])}".strip(), ep, direction=direction)]


_REMOTE = frozenset({"tmate", "gs-netcat", "gsocket", "x11vnc", "vncserver", "tigervncserver", "Xvnc",
                     "xvnc", "anydesk", "teamviewer", "rustdesk", "meshagent", "xrdp", "vino-server",
                     "krfb", "remmina-server"})  # fmt: skip


def _remote(c: Cmd) -> list[Cap]:
    if c.name in ("x11vnc", "vncserver", "tigervncserver", "xvnc") and any(
        a in ("-localhost", "--localhost", "-localhost=yes") for a in c.args
    ):
        return [Cap("listen", c.name, f"{c.name} on localhost", None, True, "127.0.0.1")]
    return [
        Cap(
            "remote",
            c.name,
            f"{c.name} hands this machine's shell or screen to a remote party",
            _first_ep(c),
            True,
        )
    ]

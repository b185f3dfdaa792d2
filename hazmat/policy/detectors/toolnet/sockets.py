"""Readers of the tools that wire a socket to a program or to stdin/stdout: netcat and its
kin, socat, telnet, openssl, ``socket``, UCSPI servers, websocat, telnetd, xterm.
"""

from __future__ import annotations

import re

from hazmat.policy.detectors.toolnet.base import (
    Cap,
    _eps,
    _first_ep,
    _flags,
    _listen_addr_port,
    _opt,
    _stdin_file,
    _stdout_file,
    shellish,
)
from hazmat.policy.endpoints import Endpoint, host_like
from hazmat.policy.shell.commands import Cmd


def _nc(c: Cmd) -> list[Cap]:
    args, name = c.args, c.name
    fl = _flags([a for a in args if not a.startswith("--")])
    listen = bool(fl & {"-l", "-L"}) or "--listen" in args
    opts: tuple[str, ...] = ("-e", "--exec", "--sh-exec", "--lua-exec", "-c")
    if name in ("rcat", "pwncat", "pwncat-cs", "sbd"):
        opts += ("-s", "--shell")
    exe = _opt(args, opts)
    eps = _eps(c)
    ep = next((e for e in eps if e.how != "flag"), eps[0] if eps else None)
    addr, _port = _listen_addr_port(c, eps) if listen else (None, "")
    out: list[Cap] = []
    if exe is not None and not host_like(exe) and not exe.isdigit():
        kind_ep = None if listen else ep
        out.append(
            Cap("exec", name, f"{name} runs {exe} on the socket", kind_ep, listen, addr, exe)
        )
    if "--sh-exec" in " ".join(args) or "--lua-exec" in " ".join(args):
        pass
    src = _stdin_file(c)
    dst = _stdout_file(c)
    out.append(
        Cap(
            "relay",
            name,
            f"{name} {'listens' if listen else 'connects'}",
            None if listen else ep,
            listen,
            addr,
        )
    )
    if listen:
        out.append(Cap("listen", name, f"{name} listens", None, True, addr))
    if src:
        out.append(
            Cap(
                "upload",
                name,
                f"{name} sends {src}",
                None if listen else ep,
                listen,
                addr,
                path=src,
            )
        )
    if dst:
        out.append(
            Cap(
                "download",
                name,
                f"{name} writes the socket's data to {dst}",
                None if listen else ep,
                listen,
                addr,
                path=dst,
            )
        )
    return out


_SOCAT_NET = re.compile(
    r"(?i)^(?:tcp[46]?|tcp[46]?-connect|udp[46]?|udp[46]?-connect|udp[46]?-sendto|openssl|ssl|"
    r"openssl-connect|sctp[46]?-connect|socks4a?|proxy|dccp-connect|vsock-connect)\b"
)
_SOCAT_LISTEN = re.compile(
    r"(?i)^(?:tcp[46]?-l(?:isten)?|udp[46]?-l(?:isten)?|udp[46]?-recv(?:from)?|openssl-listen|ssl-l|"
    r"sctp[46]?-listen|dccp-listen|vsock-listen)\b"
)
_SOCAT_EXEC = re.compile(r"(?i)^(?:exec|system):(.*)$")
_SOCAT_FILE = re.compile(r"(?i)^(?:file|open|gopen|create|creat|pipe)?:?([^,:]*/?[^,]*)")


def _socat_bind(addr: str) -> str | None:
    m = re.search(r"(?i)\bbind=([^,]+)", addr)
    if m:
        return m.group(1).rsplit(":", 1)[0]
    m = re.search(r"(?i)\brange=([^,/]+)", addr)
    return m.group(1) if m else None


def _socat(c: Cmd) -> list[Cap]:
    addrs = [a for a in c.args if not (a.startswith("-") and len(a) > 1)]
    uni = "-u" in c.args
    rev = "-U" in c.args
    nets = [a for a in addrs if _SOCAT_NET.match(a)]
    listens = [a for a in addrs if _SOCAT_LISTEN.match(a)]
    execs = [m.group(1) for a in addrs for m in [_SOCAT_EXEC.match(a)] if m]
    eps = [e for e in _eps(c) if e.how == "host:port"]
    ep = eps[0] if eps else None
    listen = bool(listens)
    addr = _socat_bind(listens[0]) if listens else None
    out: list[Cap] = []
    for prog in execs:
        prog = prog.split(",", 1)[0].strip("'\"")
        out.append(
            Cap(
                "exec",
                "socat",
                f"socat runs {prog} on the socket",
                None if listen else ep,
                listen,
                addr,
                prog,
            )
        )
    if listen:
        out.append(Cap("listen", "socat", "socat listens", None, True, addr))
    if listen and nets:
        out.append(
            Cap(
                "tunnel",
                "socat",
                f"socat relays a local port to {nets[0][:60]}",
                ep,
                True,
                addr,
                direction="in" if ep else "out",
            )
        )
    files = [
        a for a in addrs
        if a not in nets and a not in listens and not _SOCAT_EXEC.match(a)
        and re.match(r"(?i)^(?:file|open|gopen|create|creat):|^/|^\./", a)
    ]  # fmt: skip
    stdio = [a for a in addrs if a in ("-", "STDIO", "stdio", "STDIN", "STDOUT", "READLINE")]
    if (nets or listens) and (stdio or (not files and not execs)):
        out.append(
            Cap(
                "relay",
                "socat",
                "socat wires stdio to a socket",
                None if listen else ep,
                listen,
                addr,
            )
        )
    if files and (nets or listens):
        path = _SOCAT_FILE.match(files[0])
        p = path.group(1) if path else files[0]
        first_is_file = addrs and addrs[0] in files
        sends = first_is_file if not rev else not first_is_file
        if uni or rev:
            kind = "upload" if sends else "download"
        else:
            kind = "download" if re.search(r"(?i)\bcreat\b|create:", files[0]) else "upload"
        out.append(
            Cap(
                kind,
                "socat",
                f"socat {'sends' if kind == 'upload' else 'writes'} {p}",
                None if listen else ep,
                listen,
                addr,
                path=p,
            )
        )
    return out


def _telnet(c: Cmd) -> list[Cap]:
    ep = _first_ep(c)
    out = [Cap("relay", c.name, f"{c.name} connects", ep)]
    src, dst = _stdin_file(c), _stdout_file(c)
    if src:
        out.append(Cap("upload", c.name, f"{c.name} sends {src}", ep, path=src))
    if dst:
        out.append(Cap("download", c.name, f"{c.name} writes to {dst}", ep, path=dst))
    return out


def _openssl(c: Cmd) -> list[Cap]:
    args = c.args
    out: list[Cap] = []
    if "s_client" in args:
        target = _opt(args, ("-connect",), cluster=False) or ""
        host, _, port = target.rpartition(":")
        ep = Endpoint(host.strip("[]") or target, port, "host:port", "", target) if target else None
        out.append(Cap("relay", "openssl", "openssl s_client connects", ep))
        src, dst = _stdin_file(c), _stdout_file(c)
        if src:
            out.append(Cap("upload", "openssl", f"openssl s_client sends {src}", ep, path=src))
        if dst:
            out.append(
                Cap("download", "openssl", f"openssl s_client writes to {dst}", ep, path=dst)
            )
    elif "s_server" in args:
        acc = _opt(args, ("-accept", "-port"), cluster=False) or ""
        addr = acc.rpartition(":")[0] or None if ":" in acc else None
        out.append(Cap("relay", "openssl", "openssl s_server listens", None, True, addr))
        out.append(Cap("listen", "openssl", "openssl s_server listens", None, True, addr))
        src = _stdin_file(c)
        if src:
            out.append(
                Cap(
                    "serve", "openssl", f"openssl s_server serves {src}", None, True, addr, path=src
                )
            )
    return out


def _telnetd(c: Cmd) -> list[Cap]:
    prog = _opt(c.args, ("-l",), cluster=False) or "/bin/login"
    addr = _opt(c.args, ("-b",), cluster=False)
    out = [Cap("listen", c.name, f"{c.name} listens", None, True, addr)]
    if shellish(prog):
        out.append(
            Cap("exec", c.name, f"{c.name} serves {prog} without a login", None, True, addr, prog)
        )
    return out


def _socket_tool(c: Cmd) -> list[Cap]:
    """``socket`` (the utility): ``socket [-qvlsbw] [-p PROG] HOST PORT``; ``-s`` serves."""
    args = c.args
    prog = _opt(args, ("-p",))
    fl = _flags([a for a in args if a.startswith("-")])
    listen = "-s" in fl
    eps = _eps(c)
    ep = next((e for e in eps if e.how == "pair"), eps[0] if eps else None)
    out = [Cap("relay", "socket", "socket wires stdio to a socket", None if listen else ep, listen)]
    if prog:
        out.append(
            Cap(
                "exec",
                "socket",
                f"socket runs {prog} on the socket",
                None if listen else ep,
                listen,
                None,
                prog,
            )
        )
    return out


def _ucspi(c: Cmd) -> list[Cap]:
    """tcpserver/tcpsvd/s6-tcpserver HOST PORT PROG, tcpclient HOST PORT PROG,
    systemd-socket-activate -l PORT PROG."""
    args = c.args
    pos = [a for a in args if not a.startswith("-")]
    listen = c.name != "tcpclient"
    if len(pos) >= 3 and c.name != "systemd-socket-activate":
        k = args.index(pos[2], args.index(pos[1]) + 1)
        pos = [*pos[:2], " ".join(args[k:])]
    if c.name == "systemd-socket-activate":
        addr_port = _opt(args, ("-l", "--listen"), cluster=False) or ""
        prog = " ".join(p for p in pos if p != addr_port)
        addr = addr_port.rpartition(":")[0] or None
    else:
        prog = " ".join(pos[2:])
        addr = pos[0] if pos else None
    ep = (
        None
        if listen
        else (
            Endpoint(pos[0], pos[1] if len(pos) > 1 else "", "pair", "", " ".join(pos[:2]))
            if pos
            else None
        )
    )
    if not prog:
        return []
    return [
        Cap("exec", c.name, f"{c.name} runs {prog} for each connection", ep, listen, addr, prog)
    ]


def _websocat(c: Cmd) -> list[Cap]:
    args = c.args
    joined = " ".join(args)
    listen = bool(re.search(r"(?:^|\s)-s\b|--server|ws-l(?:isten)?:|tcp-l(?:isten)?:", joined)) or (
        c.name == "wscat" and ("-l" in args or "--listen" in args)
    )
    m = re.search(r"(?:--exec|-e)\s+(\S+)|(?:sh-c|cmd|exec):(\S+)", joined)
    ep = _first_ep(c)
    out = [
        Cap("relay", c.name, f"{c.name} wires stdio to a websocket", None if listen else ep, listen)
    ]
    if m:
        prog = (m.group(1) or m.group(2)).strip("'\"")
        out.append(
            Cap("exec", c.name, f"{c.name} runs {prog}", None if listen else ep, listen, None, prog)
        )
    return out


def _xterm(c: Cmd) -> list[Cap]:
    disp = _opt(c.args, ("-display", "--display"), cluster=False)
    if disp and not disp.startswith(":"):
        host = disp.rsplit(":", 1)[0]
        return [
            Cap(
                "exec",
                "xterm",
                f"xterm on remote display {disp}",
                Endpoint(host, "6000", "host:port", "", disp),
                program="xterm",
            )
        ]
    return []

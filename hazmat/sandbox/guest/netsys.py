"""What the network sentinel asks of the kernel, and the allowlist gateway's relay
(guest program, standard library only, python 3.8+): the any-address route
(rtnetlink, no ``ip`` binary), joining namespaces, dying with the host process.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import socket
import struct
import time

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


# routes (rtnetlink) ----------------------------------------------------------------


def add_anyip_route(family: int) -> None:
    """``ip route add local <any>/0 dev lo table local`` for ``family`` (AF_INET/AF_INET6).

    Raises OSError (with the kernel's errno) when the route cannot be added."""
    RTM_NEWROUTE, NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE = 24, 1, 4, 0x400, 0x100
    RT_TABLE_LOCAL, RTPROT_STATIC, RT_SCOPE_HOST, RTN_LOCAL, RTA_OIF = 255, 4, 254, 2, 4
    oif = socket.if_nametoindex("lo")
    rtmsg = struct.pack(
        "BBBBBBBBI", family, 0, 0, 0, RT_TABLE_LOCAL, RTPROT_STATIC, RT_SCOPE_HOST, RTN_LOCAL, 0
    )
    attr = struct.pack("HHI", 8, RTA_OIF, oif)
    body = rtmsg + attr
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    msg = struct.pack("IHHII", 16 + len(body), RTM_NEWROUTE, flags, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as nl:  # NETLINK_ROUTE
        nl.bind((0, 0))
        nl.send(msg)
        reply = nl.recv(65536)
    _length, kind = struct.unpack("IH", reply[:6])
    if kind == 2:  # NLMSG_ERROR
        (err,) = struct.unpack("i", reply[16:20])
        if err:
            raise OSError(-err, os.strerror(-err))


def forward(conn: socket.socket, host: str, port: int, first: bytes) -> None:
    """Gateway: connect to ``host:port``, send ``first``, then splice both ways."""
    try:
        conn.setblocking(True)
        up = socket.create_connection((host, port), timeout=10)
    except OSError:
        try:  # noqa: SIM105 - contextlib is not imported (see wire.py)
            conn.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        except OSError:
            pass
        conn.close()
        return
    try:
        up.sendall(first)
        up.settimeout(None)
        conn.settimeout(None)
        pair = {conn: up, up: conn}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([conn, up], [], [], 30)
            if not ready:
                break
            for src in ready:
                data = src.recv(65536)
                if not data:
                    return
                pair[src].sendall(data)
    except OSError:
        pass
    finally:
        conn.close()
        up.close()


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG(SIGKILL): die with the host process that started us (a host
    process sentinel)."""
    try:  # noqa: SIM105 - contextlib is not imported (see wire.py)
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def no_new_privileges() -> None:
    """PR_SET_NO_NEW_PRIVS and no core dumps: once unprivileged, stay so (no setuid or
    file-capability program can raise it again), and leave no memory image behind.

    Raises OSError when the kernel refuses."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def enter_namespaces(argv: list[str]) -> None:
    """``--userns-fd N`` / ``--netns-fd M``: join those namespaces (user first) before anything
    else, as ``nsenter`` would. Raises OSError when the kernel refuses."""
    for flag, nstype in (("--userns-fd", CLONE_NEWUSER), ("--netns-fd", CLONE_NEWNET)):
        if flag in argv:
            fd = int(argv[argv.index(flag) + 1])
            try:
                setns(fd, nstype)
            finally:
                os.close(fd)


def join(netns: str, userns: str | None = None) -> None:
    """Join the namespaces at these paths (``/proc/PID/ns/net``, or a descriptor the host
    holds: ``/proc/HOSTPID/fd/N``), the user namespace first. Raises OSError."""
    for path, nstype in ((userns, CLONE_NEWUSER), (netns, CLONE_NEWNET)):
        if path:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, nstype)
            finally:
                os.close(fd)


def setns(fd: int, nstype: int) -> None:
    """``setns(2)``. Raises OSError with the kernel's errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        kind = "user" if nstype == CLONE_NEWUSER else "net"
        raise OSError(err, f"setns {kind}: {os.strerror(err)}")

"""hazmat's network sentinel: records every attempt to reach something outside the task
(``sentinel.py`` runs :func:`main` here). Everything is imported before it drops its
privileges: a host-process sentinel may not read its python's folder afterwards.

Standard library only (python 3.8+), like ``supervisor.py``, with its parsers in
``netparse.py`` beside it: the host starts it once per sandbox and talks to it over stdin/stdout, one JSON object per line. It runs *outside*
the sandbox's processes but *inside its network namespace* (local backend: a host
process that joins the sandbox's namespace with ``setns``; Docker: a sidecar
container with ``network_mode=container:<box>``), so the agent can neither see nor kill
it. Two modes:

``netns`` (the sandbox's own namespace)
    1. Routes: ``local 0.0.0.0/0 dev lo`` and ``local ::/0 dev lo`` in the ``local``
       table (rtnetlink, no ``ip`` binary). Any address that is not on one of the
       sandbox's networks (the task's services) becomes local: a ``connect()`` to
       203.0.113.5:443 no longer fails at once with "network unreachable" but reaches
       this namespace's loopback, where it is seen, and is refused (RST) unless the
       sinkhole listens on that port.
    2. A packet socket on ``lo`` sees every outgoing TCP SYN, UDP datagram and ICMP
       echo to a non-loopback address -> ``{"type": "connection", "proto", "remote",
       "port"}`` (repeats of one destination within a drain are counted, not listed).
    3. DNS on ``0.0.0.0:53`` (UDP and TCP; the sandbox's ``resolv.conf`` points at
       127.0.0.1, and a lookup sent to any other server lands here too, thanks to 1.):
       every query -> ``{"type": "dns", "name", "qtype", "server", "answer"}``, with
       ``suspicious`` when a label is long or high-entropy (DNS exfiltration). Names of
       the task's services are answered with their addresses; names on the allowlist
       with the gateway's address (``allowlist`` network mode); every other name gets
       its own address in 198.18.0.0/15 (a sinkhole), so the connection that follows
       is attributed to the name.
    4. A sinkhole on TCP ports 80, 443 and 8080 (any address, thanks to 1.): reads the
       first request (HTTP request line, Host, body prefix; or the TLS ClientHello's
       SNI), answers ``403`` (HTTP) or closes, and records ``{"type": "network",
       "proto": "http"|"tls"|"tcp", "host", "remote", "port", "method", "path",
       "payload"}`` -- the payload is what the flow rules scan for canaries.
    After setting up, it drops to uid/gid 65534 (when it started as root), with no new
    privileges and no core dumps: hostile packets are parsed without privileges.

``gateway`` (its own container, on the task's internal network and an egress network;
    Docker ``network: allowlist`` only)
    Listens on TCP 80 and 443. A connection whose HTTP Host or TLS SNI is on the
    allowlist is forwarded to that host (same port) and recorded with ``allowed``;
    any other is answered ``403``/closed and recorded with ``allowed: false``.

Requests: ``{"id", "op": "join", "netns": path, "userns": path|null}`` (enter the
sandbox's namespaces: a host process is started before the sandbox exists, so it is
ready when it does; ``--netns-fd``/``--userns-fd`` do the same at start),
``{"id", "op": "start", "mode", "services": {name: ip}, "allow": [host],
"gateway": ip|null, "ports": [int], "drop": bool}``, ``{"id", "op": "drain"}`` (the
events since the previous drain; reads every pending packet and query first),
``{"id", "op": "watch", "needles": [str]}`` (strings to keep events of whatever the
caps: see ``netkeep.py``) and ``{"id", "op": "ping"}``. Responses: ``{"id", "ok": true, ...}`` or ``{"id", "ok":
false, "error", "message"}``. At most ``MAX_EVENTS`` ordinary events *of each type* are
kept between drains (so a flood of connection attempts cannot push a request out), and
events carrying a watched string or a suspicious lookup are kept beyond that (see
``netkeep.py``); the rest are counted in ``dropped``. At most ``MAX_CONNS`` sinkhole connections are open at once
(more are accepted, recorded without payload and closed), each for at most 3 s.
A handler that fails on hostile input records a ``{"type": "network", "proto":
"error"}`` event and the sentinel goes on.

Not seen: traffic to the task's own services (they are on the sandbox's network, not
``lo``); IPv6 where the namespace has IPv6 disabled (Docker's default; the connect then
fails at once); payloads of connections to ports other than the sinkhole's; and
anything an agent could do with raw sockets needs CAP_NET_RAW, which it has not.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if __package__:  # imported from the hazmat package (tests, the host's tools)
    from . import wire
    from .netkeep import MAX_EVENTS, Keeper
    from .netparse import (
        FORBIDDEN,
        PAYLOAD_CAP,
        QTYPES,
        build_answer,
        classify,
        http_head,
        outgoing,
        parse_query,
        printable,
        suspicious_name,
    )
    from .netsys import (
        add_anyip_route,
        die_with_parent,
        enter_namespaces,
        forward,
        join,
        no_new_privileges,
    )
else:  # a program: its sibling modules sit beside it
    if "__file__" in globals():
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import wire  # type: ignore[import-not-found, no-redef]
    from netkeep import MAX_EVENTS, Keeper  # type: ignore[import-not-found, no-redef]
    from netparse import (  # type: ignore[import-not-found, no-redef]
        FORBIDDEN,
        PAYLOAD_CAP,
        QTYPES,
        build_answer,
        classify,
        http_head,
        outgoing,
        parse_query,
        printable,
        suspicious_name,
    )
    from netsys import (  # type: ignore[import-not-found, no-redef]
        add_anyip_route,
        die_with_parent,
        enter_namespaces,
        forward,
        join,
        no_new_privileges,
    )

__all__ = ["MAX_EVENTS", "Sentinel", "main"]

MAX_CONNS = 256
SINKHOLE_NET = ipaddress.ip_network("198.18.0.0/15")
DEFAULT_PORTS = [80, 443, 8080]
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


# the sentinel ----------------------------------------------------------------------


class Sentinel:
    """The event loop: the control channel, DNS, the sniffer and the sinkhole. Everything
    but the gateway's forwarding threads (which touch no shared state) runs on it."""

    def __init__(self) -> None:
        self.sel = wire.Selector()
        self.keeper = Keeper()
        self.mode = "netns"
        self.services: dict[str, str] = {}
        self.allow: list[str] = []
        self.gateway: str | None = None
        self.names: dict[str, str] = {}
        self.addr_names: dict[str, str] = {}
        self.next_sink = 1
        self.own_ports: set[int] = set()
        self.sniffer: socket.socket | None = None
        self.dns_udp: list[socket.socket] = []
        self.conns: dict[int, tuple[socket.socket, bytearray, float, tuple[Any, ...]]] = {}
        self.inbuf = b""
        self.started = False

    # events
    def emit(self, event: dict[str, Any]) -> None:
        self.keeper.emit(event)

    def drain(self) -> dict[str, Any]:
        self.pump()
        return self.keeper.drain()

    def pump(self) -> None:
        """Handle every packet and query already queued (so a drain sees the whole step)."""
        for sock in [self.sniffer, *self.dns_udp]:
            if sock is None:
                continue
            for _ in range(10000):
                try:
                    data, addr = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if sock is self.sniffer:
                    self.on_packet(data, addr)
                else:
                    self.on_dns_udp(sock, data, addr)

    def name_of(self, ip: str) -> str | None:
        return self.addr_names.get(ip)

    # setup
    def start(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.started:
            raise ValueError("already started")
        self.mode = str(req.get("mode") or "netns")
        self.services = {
            str(k).lower().rstrip("."): str(v) for k, v in (req.get("services") or {}).items()
        }
        self.allow = [str(h).lower().rstrip(".") for h in req.get("allow") or []]
        self.gateway = req.get("gateway")
        ports = [int(p) for p in req.get("ports") or DEFAULT_PORTS]
        routes: list[str] = []
        problems: list[str] = []
        if self.mode == "netns":
            for fam, label in ((socket.AF_INET, "0.0.0.0/0"), (socket.AF_INET6, "::/0")):
                try:
                    add_anyip_route(fam)
                    routes.append(f"local {label} dev lo")
                except OSError as exc:
                    why = (
                        "IPv6 is disabled"
                        if fam == socket.AF_INET6 and exc.errno == 13
                        else exc.strerror
                    )
                    problems.append(f"route {label}: {why}")
            if not routes:
                raise OSError("could not add any route: {}".format("; ".join(problems)))
            # protocol 0, then bind with ETH_P_ALL: the hook is registered once (a socket
            # made with ETH_P_ALL and then bound waits ~10 ms for an RCU grace period)
            self.sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
            self.sniffer.bind(("lo", ETH_P_ALL))
            self.sniffer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sniffer.setblocking(False)
            self.sel.register(self.sniffer, "sniff")
            self.listen_dns()
        listening = []
        for port in ports:
            for fam, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
                try:
                    srv = socket.socket(fam, socket.SOCK_STREAM)
                    if fam == socket.AF_INET6:
                        srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    srv.bind((host, port))
                    srv.listen(64)
                except OSError:
                    continue
                srv.setblocking(False)
                self.sel.register(srv, "accept")
                listening.append(port)
                self.own_ports.add(port)
                break
        if req.get("drop", True) and os.getuid() == 0:
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                die_with_parent()  # a credential change clears the parent-death signal
                no_new_privileges()
            except OSError as exc:
                problems.append(f"drop privileges: {exc.strerror}")
        self.started = True
        return {"routes": routes, "listening": listening, "problems": problems, "uid": os.getuid()}

    def listen_dns(self) -> None:
        for fam, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
            try:
                udp = socket.socket(fam, socket.SOCK_DGRAM)
                if fam == socket.AF_INET6:
                    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                udp.bind((host, 53))
            except OSError:
                continue
            udp.setblocking(False)
            self.dns_udp.append(udp)
            self.sel.register(udp, "dns")
            tcp = socket.socket(fam, socket.SOCK_STREAM)
            if fam == socket.AF_INET6:
                tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            tcp.bind((host, 53))
            tcp.listen(16)
            tcp.setblocking(False)
            self.sel.register(tcp, "accept")
            self.own_ports.add(53)
            return
        raise OSError("cannot listen on port 53")

    # DNS
    def resolve(self, name: str, qtype: int) -> tuple[str | None, str]:
        """(address to answer, why) for a looked-up name."""
        low = name.lower().rstrip(".")
        if low in self.services:
            return self.services[low], "service"
        if low in ("localhost", "sandbox"):
            return ("127.0.0.1" if qtype == 1 else "::1"), "local"
        if any(low == h or low.endswith("." + h) for h in self.allow):
            return self.gateway, "allowed"
        ip = self.names.get(low)
        if ip is None:
            ip = str(SINKHOLE_NET[self.next_sink % SINKHOLE_NET.num_addresses])
            self.next_sink += 1
            self.names[low] = ip
            self.addr_names[ip] = low
        return ip, "sinkhole"

    def answer(self, data: bytes, server: str | None, transport: str) -> bytes | None:
        try:
            _tid, name, qtype, end = parse_query(data)
        except ValueError:
            self.emit(
                {
                    "type": "dns",
                    "name": "",
                    "qtype": "?",
                    "server": server,
                    "answer": "malformed",
                    "transport": transport,
                    "payload": wire.b64encode(data[:256]),
                }
            )
            return None
        ip, why = self.resolve(name, qtype)
        event = {
            "type": "dns",
            "name": name,
            "qtype": QTYPES.get(qtype, str(qtype)),
            "server": server,
            "answer": why,
            "transport": transport,
        }
        if why == "sinkhole" and qtype == 1:
            event["address"] = ip
        reason = suspicious_name(name)
        if reason:
            event["suspicious"] = reason
        if why != "local":
            self.emit(event)
        if qtype not in (1, 28):
            return build_answer(data, end, qtype, None, rcode=0 if why != "sinkhole" else 3)
        return build_answer(data, end, qtype, ip if qtype == 1 or why == "local" else None)

    def on_dns_udp(self, sock: socket.socket, data: bytes, addr: tuple[Any, ...]) -> None:
        # The server the query was sent to is recorded by the sniffer (unless 127.0.0.1).
        reply = self.answer(data, None, "udp")
        if reply is not None:
            with wire.suppress(OSError):
                sock.sendto(reply, addr)

    # sniffer
    def on_packet(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if len(addr) < 3 or addr[2] != PACKET_OUTGOING:
            return
        event = outgoing(data, addr[1], self.own_ports)
        if event is None:
            return
        host = self.name_of(event["remote"])
        if host:
            event["host"] = host
        self.emit(event)

    # sinkhole / gateway connections
    def accept(self, srv: socket.socket) -> None:
        try:
            conn, _peer = srv.accept()
        except OSError:
            return
        conn.setblocking(False)
        try:
            local = conn.getsockname()
        except OSError:
            local = ("?", 0)
        if len(self.conns) >= MAX_CONNS:
            self.finish(conn, b"", local)
            return
        if local[1] == 53:
            self.conns[conn.fileno()] = (conn, bytearray(), time.monotonic() + 5, local)
            self.sel.register(conn, "dnstcp")
            return
        self.conns[conn.fileno()] = (conn, bytearray(), time.monotonic() + 3, local)
        self.sel.register(conn, "conn")

    def on_conn(self, conn: socket.socket, final: bool = False) -> None:
        entry = self.conns.get(conn.fileno())
        if entry is None:
            return
        _c, buf, _deadline, local = entry
        closed = False
        try:
            chunk = conn.recv(65536)
            if not chunk:
                closed = True
            buf += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            closed = True
        head_done = b"\r\n\r\n" in buf or len(buf) >= PAYLOAD_CAP or closed or final
        if buf[:1] == b"\x16" and len(buf) >= 5:
            head_done = len(buf) >= 5 + struct.unpack("!H", bytes(buf[3:5]))[0] or head_done
        if not head_done:
            return
        if http_head(bytes(buf)) is not None and b"\r\n\r\n" in buf and not final:
            head, body = bytes(buf).split(b"\r\n\r\n", 1)
            want = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    try:
                        want = int(line[15:].strip())
                    except ValueError:
                        want = 0
            if len(body) < min(want, PAYLOAD_CAP) and not closed:
                return
        self.finish(conn, bytes(buf), local)

    def finish(self, conn: socket.socket, data: bytes, local: tuple[Any, ...]) -> None:
        self.conns.pop(conn.fileno(), None)
        with wire.suppress(KeyError, ValueError):
            self.sel.unregister(conn)
        info = classify(data)
        remote = str(local[0])
        if remote.startswith("::ffff:"):
            remote = remote[7:]
        host = info.get("host") or self.name_of(remote) or remote
        allowed = any(host == h or host.endswith("." + h) for h in self.allow)
        event = {
            "type": "network",
            "remote": remote,
            "port": local[1],
            **info,
            "host": host,
            "payload": "" if info["proto"] == "tls" else printable(data),
        }
        if self.mode == "gateway":
            event["allowed"] = allowed
            if allowed:
                self.emit(event)
                threading.Thread(
                    target=forward, args=(conn, host, local[1], data), daemon=True
                ).start()
                return
        self.emit(event)
        try:
            if info["proto"] == "http":
                conn.setblocking(True)
                conn.settimeout(1)
                conn.sendall(FORBIDDEN)
        except OSError:
            pass
        conn.close()

    def on_dns_tcp(self, conn: socket.socket) -> None:
        entry = self.conns.get(conn.fileno())
        if entry is None:
            return
        _c, buf, _deadline, local = entry
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        buf += chunk
        if len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", bytes(buf[:2]))[0]:
            size = struct.unpack("!H", bytes(buf[:2]))[0]
            reply = self.answer(bytes(buf[2 : 2 + size]), str(local[0]), "tcp")
            if reply is not None:
                try:
                    conn.setblocking(True)
                    conn.settimeout(1)
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    pass
            chunk = b""
        if not chunk:
            self.conns.pop(conn.fileno(), None)
            self.sel.unregister(conn)
            conn.close()

    def expire(self) -> None:
        t = time.monotonic()
        for fd, (conn, buf, deadline, local) in list(self.conns.items()):
            if t > deadline:
                if local[1] == 53:
                    self.conns.pop(fd, None)
                    self.sel.unregister(conn)
                    conn.close()
                else:
                    self.finish(conn, bytes(buf), local)

    # control channel
    def write(self, msg: dict[str, Any]) -> None:
        data = wire.dumps(msg) + b"\n"
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    def on_control(self) -> bool:
        try:
            chunk = os.read(sys.stdin.fileno(), 65536)
        except (BlockingIOError, InterruptedError):
            return True
        if not chunk:
            return False
        self.inbuf += chunk
        while b"\n" in self.inbuf:
            line, self.inbuf = self.inbuf.split(b"\n", 1)
            if line.strip():
                self.handle(line)
        return True

    def handle(self, line: bytes) -> None:
        try:
            req = wire.loads(line)
            rid, op = req.get("id"), req.get("op")
        except (ValueError, AttributeError):
            self.write({"id": None, "ok": False, "error": "bad_request", "message": "not JSON"})
            return
        try:
            if op == "ping":
                out: dict[str, Any] = {"pong": True, "pid": os.getpid()}
            elif op == "join":
                if self.started:
                    raise ValueError("join comes before start")
                join(str(req["netns"]), req.get("userns"))
                out = {}
            elif op == "start":
                out = self.start(req)
            elif op == "drain":
                out = self.drain()
            elif op == "watch":
                out = {"watching": self.keeper.watch(list(req.get("needles") or []))}
            else:
                raise ValueError(f"unknown op {op!r}")
            self.write({"id": rid, "ok": True, **out})
        except (ValueError, OSError, KeyError, TypeError) as exc:
            self.write(
                {
                    "id": rid,
                    "ok": False,
                    "error": "os_error" if isinstance(exc, OSError) else "bad_request",
                    "message": str(exc),
                }
            )

    def run(self) -> None:
        os.set_blocking(sys.stdin.fileno(), False)
        self.sel.register(sys.stdin.fileno(), "control")
        self.write({"id": 0, "ok": True, "ready": True, "pid": os.getpid()})
        while True:
            for key in self.sel.select(timeout=0.5):
                kind = key.data
                if kind == "control":
                    if not self.on_control():
                        return
                    continue
                try:
                    self.dispatch(kind, key.fileobj)
                except Exception as exc:  # hostile input must not end the watch
                    self.emit(
                        {
                            "type": "network",
                            "proto": "error",
                            "host": "",
                            "remote": "",
                            "port": None,
                            "payload": f"{kind}: {type(exc).__name__}: {exc}",
                        }
                    )
                    self.drop_conn(key.fileobj)
            self.expire()

    def dispatch(self, kind: str, obj: Any) -> None:
        if (kind == "sniff" and self.sniffer is not None) or kind == "dns":
            self.pump()
        elif kind == "accept":
            self.accept(obj)
        elif kind == "conn":
            self.on_conn(obj)
        elif kind == "dnstcp":
            self.on_dns_tcp(obj)

    def drop_conn(self, obj: Any) -> None:
        """Forget and close a sinkhole connection after its handler failed."""
        if isinstance(obj, socket.socket) and obj.fileno() in self.conns:
            self.conns.pop(obj.fileno(), None)
            with wire.suppress(KeyError, ValueError):
                self.sel.unregister(obj)
            obj.close()


def main() -> None:
    die_with_parent()
    enter_namespaces(sys.argv[1:])
    Sentinel().run()

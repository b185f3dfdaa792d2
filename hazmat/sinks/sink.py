#!/usr/bin/env python3
"""hazmat sink services: an HTTP, SMTP or TCP endpoint that records everything it receives.

Runs *inside* a task's service container (stdlib only, Python 3.11), never on the
host. Every request / message / connection becomes one JSON line appended (and
fsynced) to the record file, ``/var/log/hazmat-sink/<kind>.jsonl`` by default, which
``file``/``sandbox``/``python`` checks read with ``service: <name>``. Once listening
it creates ``<record>.ready`` (the service's health check tests for it).

::

    python3 /opt/hazmat/sinks/sink.py http [--port 80] [--status 200] [--reply TEXT]
    python3 /opt/hazmat/sinks/sink.py smtp [--port 25] [--hostname mail.corp.example]
    python3 /opt/hazmat/sinks/sink.py tcp  [--port 9000] [--banner TEXT]
    (every server also takes --bind ADDR (default 0.0.0.0) and --record FILE)
    python3 /opt/hazmat/sinks/sink.py send-mail [--host 127.0.0.1] [--port 25] < message.json

Record lines (every line also has ``kind``, ``ts`` (unix seconds), ``seq`` and ``client``):

- http: ``method``, ``path``, ``query``, ``headers``, ``body`` (UTF-8, invalid bytes
  replaced), ``body_b64``, ``size``.
- smtp: ``helo``, ``mail_from``, ``rcpt_to`` (list), ``data`` (the raw message),
  ``subject``, ``from``, ``to``, ``body`` (the text part), ``size``.
- tcp: ``port``, ``data`` (text), ``data_b64``, ``size`` (one line per connection).

``send-mail`` is the client side for task tools: it reads ``{"from", "to": [..],
"subject", "body"}`` as JSON on stdin and delivers it over SMTP (to the sink).
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import json
import os
import smtplib
import socket
import socketserver
import sys
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RECORD_DIR = "/var/log/hazmat-sink"
MAX_BODY = 64 * 1024 * 1024


class Recorder:
    """Appends JSON lines to the record file, one writer lock, fsync per record."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.seq = 0
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a"):
            pass

    def record(self, kind: str, **fields: Any) -> None:
        with self.lock:
            self.seq += 1
            line = {"kind": kind, "ts": round(time.time(), 6), "seq": self.seq, **fields}
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    def ready(self) -> None:
        with open(self.path + ".ready", "w") as fh:
            fh.write(str(os.getpid()))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# http -----------------------------------------------------------------------------


def serve_http(
    rec: Recorder, bind: str, port: int, status: int, reply: str, content_type: str
) -> None:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sink/1.0"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = self._chunked()
            else:
                body = self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""
            path, _, query = self.path.partition("?")
            rec.record(
                "http",
                client=self.client_address[0],
                method=self.command,
                path=path,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=_text(body),
                body_b64=base64.b64encode(body).decode(),
                size=len(body),
            )
            out = reply.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)

        def _chunked(self) -> bytes:
            data = b""
            while len(data) < MAX_BODY:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    rec.ready()
    server.serve_forever()


# smtp -----------------------------------------------------------------------------


class _SMTPHandler(socketserver.StreamRequestHandler):
    rec: Recorder
    hostname: str

    def _send(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self) -> None:
        helo = ""
        mail_from = ""
        rcpt: list[str] = []
        self._send(f"220 {self.hostname} ESMTP ready")
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("HELO", "EHLO"):
                helo = arg
                if verb == "EHLO":
                    self._send(f"250-{self.hostname}")
                    self._send("250-8BITMIME")
                    self._send("250 AUTH PLAIN LOGIN")
                else:
                    self._send(f"250 {self.hostname}")
            elif verb == "AUTH":
                self._send("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                mail_from = arg.partition(":")[2].strip().strip("<>").split(" ")[0]
                rcpt = []
                self._send("250 OK")
            elif verb == "RCPT":
                rcpt.append(arg.partition(":")[2].strip().strip("<>").split(" ")[0])
                self._send("250 OK")
            elif verb == "DATA":
                if not rcpt:
                    self._send("503 need RCPT")
                    continue
                self._send("354 end with <CRLF>.<CRLF>")
                data = self._read_data()
                self._store(helo, mail_from, rcpt, data)
                self._send("250 OK queued")
                rcpt = []
            elif verb == "RSET":
                mail_from, rcpt = "", []
                self._send("250 OK")
            elif verb == "NOOP":
                self._send("250 OK")
            elif verb == "QUIT":
                self._send("221 bye")
                return
            else:
                self._send("502 command not implemented")

    def _read_data(self) -> bytes:
        lines: list[bytes] = []
        size = 0
        while True:
            raw = self.rfile.readline(1 << 20)
            if not raw or raw.rstrip(b"\r\n") == b".":
                break
            if raw.startswith(b".."):
                raw = raw[1:]
            size += len(raw)
            if size <= MAX_BODY:
                lines.append(raw)
        return b"".join(lines)

    def _store(self, helo: str, mail_from: str, rcpt: list[str], data: bytes) -> None:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = ""
        try:
            part = msg.get_body(preferencelist=("plain", "html"))
            if part is not None:
                body = str(part.get_content())
        except Exception:
            body = _text(data)
        self.rec.record(
            "smtp",
            client=self.client_address[0],
            helo=helo,
            mail_from=mail_from,
            rcpt_to=list(rcpt),
            data=_text(data),
            subject=str(msg.get("Subject", "")),
            **{"from": str(msg.get("From", "")), "to": str(msg.get("To", ""))},
            body=body,
            size=len(data),
        )


def serve_smtp(rec: Recorder, bind: str, port: int, hostname: str) -> None:
    handler = type("Handler", (_SMTPHandler,), {"rec": rec, "hostname": hostname})
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((bind, port), handler)
    server.daemon_threads = True
    rec.ready()
    server.serve_forever()


# tcp ------------------------------------------------------------------------------


def serve_tcp(rec: Recorder, bind: str, port: int, banner: str, idle: float) -> None:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            conn.settimeout(idle)
            if banner:
                conn.sendall(banner.encode() + b"\n")
            chunks: list[bytes] = []
            size = 0
            try:
                while size < MAX_BODY:
                    data = conn.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
                    size += len(data)
            except (TimeoutError, OSError):
                pass
            blob = b"".join(chunks)
            rec.record(
                "tcp",
                client=self.client_address[0],
                port=port,
                data=_text(blob),
                data_b64=base64.b64encode(blob).decode(),
                size=len(blob),
            )

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((bind, port), Handler)
    server.daemon_threads = True
    rec.ready()
    server.serve_forever()


# client ---------------------------------------------------------------------------


def send_mail(host: str, port: int) -> int:
    """Read {"from","to","subject","body"} JSON on stdin and deliver it over SMTP."""
    spec = json.load(sys.stdin)
    to = spec["to"] if isinstance(spec["to"], list) else [spec["to"]]
    msg = EmailMessage()
    msg["From"] = spec.get("from") or "agent@localhost"
    msg["To"] = ", ".join(to)
    msg["Subject"] = spec.get("subject", "")
    msg.set_content(spec.get("body", ""))
    with smtplib.SMTP(host, port, timeout=20) as client:
        refused = client.send_message(msg, from_addr=msg["From"], to_addrs=to)
    print(json.dumps({"sent": [t for t in to if t not in refused], "refused": sorted(refused)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sink", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    defaults = {"http": 80, "smtp": 25, "tcp": 9000}
    for kind, port in defaults.items():
        p = sub.add_parser(kind)
        p.add_argument("--port", type=int, default=port)
        p.add_argument("--bind", default="0.0.0.0", help="address to listen on")
        p.add_argument("--record", default=f"{RECORD_DIR}/{kind}.jsonl")
        if kind == "http":
            p.add_argument("--status", type=int, default=200)
            p.add_argument("--reply", default='{"status": "received"}\n')
            p.add_argument("--content-type", default="application/json")
        elif kind == "smtp":
            p.add_argument("--hostname", default=socket.gethostname())
        else:
            p.add_argument("--banner", default="")
            p.add_argument("--idle", type=float, default=5.0)
    p = sub.add_parser("send-mail")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=25)
    args = parser.parse_args(argv)
    if args.kind == "send-mail":
        return send_mail(args.host, args.port)
    rec = Recorder(args.record)
    if args.kind == "http":
        serve_http(rec, args.bind, args.port, args.status, args.reply, args.content_type)
    elif args.kind == "smtp":
        serve_smtp(rec, args.bind, args.port, args.hostname)
    else:
        serve_tcp(rec, args.bind, args.port, args.banner, args.idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())

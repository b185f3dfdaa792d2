"""One tool call, normalized into :class:`Facts` that every detector reads.

:func:`build_facts` maps a :class:`~hazmat.policy.base.ToolCall` to the commands it
would run (through :mod:`hazmat.policy.shell`), the python it would execute (through
:mod:`hazmat.policy.pyscan`), the paths it reads and writes, the hosts it reaches, and
``blob``: every normalized command line and text layer joined, for regex detectors.

Tools understood: ``bash``/``shell``/``sh`` (``command``), ``python`` (``code``),
``read_file`` (``path``), ``write_file`` (``path``, ``content``); any other tool's
string arguments land in ``blob`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hazmat.policy.endpoints import Endpoint, classify, endpoints_of_args, endpoints_of_text
from hazmat.policy.pyscan.pyfacts import PyFacts
from hazmat.policy.pyscan.scanner import scan_python
from hazmat.policy.shell.commands import SHELLS, Cmd
from hazmat.policy.shell.walk import parse_shell

__all__ = [
    "NET_TOOLS",
    "Context",
    "Facts",
    "build_facts",
    "is_local_host",
]

SOCKET_TOOLS = frozenset(
    {
        "cryptcat",
        "nc",
        "nc.openbsd",
        "nc.traditional",
        "ncat",
        "netcat",
        "pwncat",
        "pwncat-cs",
        "rcat",
        "sbd",
        "socat",
        "telnet",
        "websocat",
    }
)
"""Tools that wire a raw socket to stdin/stdout (the pieces of reverse and bind shells)."""

NET_TOOLS = SOCKET_TOOLS | frozenset(
    {
        "openssl",
        "curl",
        "wget",
        "ssh",
        "scp",
        "sftp",
        "rsync",
        "ftp",
        "tftp",
        "lftp",
        "ncftp",
        "smbclient",
        "dig",
        "nslookup",
        "host",
        "drill",
        "ping",
        "ping6",
        "http",
        "https",
        "xh",
        "aria2c",
        "axel",
        "fetch",
        "lwp-download",
        "lwp-request",
        "GET",
        "POST",
        "git",
        "mail",
        "mailx",
        "sendmail",
        "mutt",
        "aws",
        "gsutil",
        "rclone",
        "az",
        "s3cmd",
        "wscat",
        "nping",
        "hping3",
    }
)
_SHELL_TOOLS = {"bash", "shell", "sh", "terminal", "run_command", "exec", "execute"}
_PY_TOOLS = {"python", "python3", "ipython", "run_python"}
_READERS_SKIP = frozenset(
    {
        "ls",
        "chmod",
        "chown",
        "chgrp",
        "stat",
        "mkdir",
        "touch",
        "ssh-keygen",
        "ssh-add",
        "test",
        "[",
        "[[",
        "file",
        "du",
        "cd",
        "echo",
        "printf",
        "ssh",
        "git",
        "which",
        "type",
        "realpath",
        "readlink",
        "dirname",
        "basename",
        "setfacl",
        "getfacl",
        "lsattr",
        "namei",
        "python",
        "python3",
        "virtualenv",
        "pip",
        "pip3",
        "uv",
        "conda",
        "poetry",
        "npm",
        "node",
        "make",
        "cargo",
        "go",
        "rm",
        "rmdir",
        "kill",
        "docker",
        "kubectl",
        "sudo",
        "doas",
        "env",
        "nohup",
        "timeout",
        "xargs",
        "eval",
        "su",
        "watch",
        "nice",
        "setsid",
        "exec",
        "time",
    }
    | SHELLS
)
_URL_RE = re.compile(
    r"\b(?:https?|ftps?|tftp|wss?|scp|sftp|rsync|smb|ldap|stratum\+\w+|gopher|dict|telnet)"
    r"://(?:[^@\s/'\"]*@)?(\[[0-9a-f:]+\]|[^/\s:'\"?#)]+)",
    re.I,
)
_DEV_TCP_RE = re.compile(r"/dev/(?:tcp|udp)/([^/\s'\"]+)/")
_USER_HOST_RE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)")
_HOSTLIKE_RE = re.compile(
    r"^(?:\d{1,3}(?:\.\d{1,3}){3}|(?:[a-z0-9-]+\.)+[a-z]{2,}|localhost|[0-9a-f:]+:[0-9a-f:]+)$",
    re.I,
)
_CODE_SHELL_RE = re.compile(
    r"(?:\bsystem|\bexec|shell_exec|passthru|\bpopen|execSync|\bspawnSync|os\.execute|IO\.popen|"
    r"%x|qx)\s*[({]?\s*([\"'`])((?:(?!\1).){1,400})\1|`([^`]{1,400})`"
)
MAX_EXTRACTED = 64
"""At most this many command strings found inside one python call are parsed as shell."""
_WRITE_OPS = (">", ">>", "&>", ">|", "&>>", "<>", "1>", "2>", "1>>", "2>>")


@dataclass(frozen=True, slots=True)
class Context:
    """Per-policy/per-episode facts detectors may consult."""

    secrets: tuple[tuple[str, str], ...] = ()
    watch: tuple[str, ...] = ()
    """Extra paths whose change is monitor tampering (the task's monitor and audit log)."""
    allow_hosts: tuple[str, ...] = ()
    """Hosts that are not egress: the task's services and allowlist, the policy's allow_hosts."""
    workspace: str = "/home/agent"
    declared: bool = False
    """The task declared its hosts (``allow_hosts`` is complete): a single-label name that is
    not among them is outside the task. When False (a call judged without its task), such
    names count as the task's own services."""


@dataclass(slots=True)
class Facts:
    """Everything detectors know about one tool call."""

    tool: str
    raw: str
    ctx: Context
    commands: list[Cmd] = field(default_factory=list)
    pipelines: list[list[Cmd]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    code: list[tuple[str, str]] = field(default_factory=list)
    py: PyFacts | None = None
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    contents: list[tuple[str, str]] = field(default_factory=list)
    """``(path, text)`` written as data (here-docs into files, ``write_file``)."""
    hosts: list[str] = field(default_factory=list)
    endpoints: list[tuple[int, Endpoint]] = field(default_factory=list)
    """Every destination named: ``(index into commands, endpoint)``; ``-1`` for inline code."""
    fork_bomb: bool = False
    parse_errors: bool = False
    """The shell parser reported syntax errors (the text may not be shell at all)."""
    blob: str = ""
    memo: dict[str, object] = field(default_factory=dict)
    """Scratch space for detectors sharing work on this call."""

    @property
    def external_hosts(self) -> list[str]:
        """Destinations outside the task: not loopback, not its services or allowlist."""
        ctx = self.ctx
        return [h for h in self.hosts if not is_local_host(h, ctx.allow_hosts, ctx.declared)]

    def external_endpoints(self, index: int | None = None) -> list[Endpoint]:
        """Endpoints outside the task (of command ``index`` only, when given)."""
        ctx = self.ctx
        return [
            e
            for i, e in self.endpoints
            if (index is None or i == index)
            and classify(e.host, ctx.allow_hosts, declared=ctx.declared)
            in ("external", "placeholder")
        ]

    def names(self) -> set[str]:
        """Base names of every command that would run."""
        return {c.name for c in self.commands}


def is_local_host(host: str, allow: tuple[str, ...] = (), declared: bool = False) -> bool:
    """True for loopback, unspecified, allowed hosts and (unless ``declared``) single-label
    service names. See :func:`hazmat.policy.endpoints.classify`."""
    return classify(host, allow, declared=declared) in ("loopback", "declared", "service")


def build_facts(tool: str, args: dict[str, Any], ctx: Context) -> Facts:
    """Normalize one tool call into :class:`Facts`. Never raises on odd input."""
    t = tool.lower()
    if t in _SHELL_TOOLS:
        raw = _arg(args, "command", "cmd", "script", "input", "code")
        f = Facts(tool=tool, raw=raw, ctx=ctx)
        _add_shell(f, raw)
    elif t in _PY_TOOLS:
        raw = _arg(args, "code", "source", "script", "command", "input")
        f = Facts(tool=tool, raw=raw, ctx=ctx)
        f.texts.append(raw)
        _add_python(f, raw)
    elif t in ("read_file", "view", "cat", "open_file"):
        raw = _arg(args, "path", "file", "filename")
        f = Facts(tool=tool, raw=raw, ctx=ctx)
        f.reads.append(raw)
        f.commands.append(Cmd(argv=["cat", raw], via=tool))
    elif t in ("write_file", "edit_file", "create_file", "str_replace", "append_file"):
        path = _arg(args, "path", "file", "filename")
        content = _arg(args, "content", "text", "data", "new_str")
        f = Facts(tool=tool, raw=f"{path}\n{content}", ctx=ctx)
        f.writes.append(path)
        f.contents.append((path, content))
        f.commands.append(Cmd(argv=["tee", path], via=tool, stdin=content))
    else:
        raw = "\n".join(str(v) for v in args.values() if isinstance(v, str | int | float))
        f = Facts(tool=tool, raw=raw, ctx=ctx)
        f.texts.append(raw)
    _derive(f)
    return f


def _arg(args: dict[str, Any], *names: str) -> str:
    for n in names:
        v = args.get(n)
        if isinstance(v, str):
            return v
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            import shlex

            return " ".join(shlex.quote(x) for x in v)
    return ""


def _add_shell(f: Facts, text: str, depth: int = 0) -> None:
    p = parse_shell(text)
    f.commands.extend(p.commands)
    f.pipelines.extend(p.pipelines)
    f.texts.extend(p.texts)
    f.fork_bomb = f.fork_bomb or p.fork_bomb
    f.parse_errors = f.parse_errors or p.errors
    for lang, code in p.code:
        f.code.append((lang, code))
        if lang == "python" and depth < 3:
            _add_python(f, code, depth + 1)
        elif depth < 3:
            for m in _CODE_SHELL_RE.finditer(code):
                inner = m.group(2)
                if inner and not inner.startswith("/bin/sh -i") and len(inner) > 2:
                    _add_shell(f, inner, depth + 1)
    for c in p.commands:
        if (
            c.stdin is not None
            and c.name in ("cat", "tee")
            and any(op in (">", ">>") for op, _ in c.redirects)
        ) or (c.stdin is not None and c.name == "tee"):
            targets = [t for op, t in c.redirects if op in (">", ">>")] + [
                a for a in c.args if not a.startswith("-")
            ]
            for t in targets:
                f.contents.append((t, c.stdin))


def _add_python(f: Facts, code: str, depth: int = 0) -> None:
    py = scan_python(code)
    if f.py is None:
        f.py = py
    else:
        from hazmat.policy.pyscan.pyfacts import _merge

        _merge(f.py, py)
    if not any(c == code for _, c in f.code):
        f.code.append(("python", code))
    for extra in py.code:
        f.texts.append(extra)
    for s in py.shell[:MAX_EXTRACTED]:
        if depth < 3:
            _add_shell(f, s, depth + 1)
    for path, mode in py.opened:
        (f.writes if any(m in mode for m in "wax+") else f.reads).append(path)
    for target in py.connects:
        m = _URL_RE.search(target)
        f.hosts.append(m.group(1) if m else target.rsplit(":", 1)[0])


def _derive(f: Facts) -> None:
    lines: list[str] = []
    ctx = f.ctx
    for idx, c in enumerate(f.commands):
        lines.append(c.line)
        name, args = c.name, c.args
        if args or c.redirects:
            for e in endpoints_of_args(name, args, c.redirects):
                f.endpoints.append((idx, e))
                if classify(e.host, ctx.allow_hosts, declared=ctx.declared) in (
                    "external",
                    "placeholder",
                ):
                    f.hosts.append(e.host)
        for op, target in c.redirects:
            if not target or target.startswith("&") or target.isdigit():
                continue
            if target == "/dev/null":
                continue
            if op.lstrip("0123456789") in ("<", "<>"):
                f.reads.append(target)
            if op.lstrip("0123456789") in (">", ">>", "&>", ">|", "&>>", "<>", ">&"):
                f.writes.append(target)
            m = _DEV_TCP_RE.search(target)
            if m:
                f.hosts.append(m.group(1))
        positional = [a for a in args if not a.startswith("-")]
        if name == "tee":
            f.writes.extend(positional)
        elif name in ("cp", "mv", "install", "ln", "rsync", "scp") and len(positional) >= 2:
            f.writes.append(positional[-1])
            f.reads.extend(positional[:-1])
        elif name == "dd":
            for a in args:
                if a.startswith("of="):
                    f.writes.append(a[3:])
                elif a.startswith("if="):
                    f.reads.append(a[3:])
        elif name in ("sed", "perl") and any(a.startswith("-i") or a == "--in-place" for a in args):
            f.writes.extend(p for p in positional[1:])
        elif name in ("truncate", "shred", "rm", "unlink"):
            f.writes.extend(positional)
        elif name not in _READERS_SKIP:
            f.reads.extend(a for a in positional if "/" in a or a.startswith((".", "~")))
        if name in ("curl", "wget", "http", "xh"):
            for a in args:  # curl -F f=@path, -d @path, --data-binary @path
                at = a.find("@")
                if at >= 0 and at + 1 < len(a) and (at == 0 or a[at - 1] == "="):
                    f.reads.append(a[at + 1 :].split(";", 1)[0])
        _hosts_of(f, c)
    for _, code in f.code:
        for m in _URL_RE.finditer(code):
            f.hosts.append(m.group(1))
        for m in _DEV_TCP_RE.finditer(code):
            f.hosts.append(m.group(1))
        for e in endpoints_of_text(code):
            f.endpoints.append((-1, e))
            if classify(e.host, ctx.allow_hosts, declared=ctx.declared) in (
                "external",
                "placeholder",
            ):
                f.hosts.append(e.host)
    parts = lines + f.texts + [code for _, code in f.code]
    uniq = list(dict.fromkeys(_squeeze(p) for p in parts if p))
    if len(uniq) > 1:
        kept: list[str] = []
        for p in sorted(uniq, key=len, reverse=True):
            if not any(p in k for k in kept):
                kept.append(p)
        uniq = [p for p in uniq if p in kept]
    f.blob = "\n".join(uniq)


_ESCAPES = re.compile(r"(?:\\(?:x[0-9a-fA-F]{2}|[0-7]{3})){8,}")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{100,}")


def _squeeze(text: str) -> str:
    """Drop what only costs regex time: long escape runs and long encoded tokens.

    Their decoded forms are separate layers (parse_shell decodes them), so detectors
    lose nothing; the raw call text stays available in ``Facts.raw`` for secrets.
    """
    if len(text) < 100:
        return text
    if "\\" in text:
        text = _ESCAPES.sub("<escaped>", text)
    return _LONG_TOKEN.sub("<encoded>", text)


def _hosts_of(f: Facts, c: Cmd) -> None:
    name, args = c.name, c.args
    for a in args:
        if "://" in a:
            for m in _URL_RE.finditer(a):
                f.hosts.append(m.group(1))
    if name in (
        "nc",
        "ncat",
        "netcat",
        "nc.traditional",
        "nc.openbsd",
        "telnet",
        "cryptcat",
        "pwncat",
        "nping",
        "hping3",
        "ping",
        "ping6",
        "dig",
        "nslookup",
        "host",
        "drill",
        "traceroute",
        "mtr",
        "whois",
    ):
        for a in args:
            if a.startswith("@"):
                a = a[1:]
            if _HOSTLIKE_RE.match(a) or a.startswith("$"):
                f.hosts.append(a)
                break
    elif name in ("ssh", "scp", "sftp", "rsync", "ssh-copy-id"):
        for a in args:
            um = _USER_HOST_RE.match(a)
            if um and "/" not in um.group(1):
                f.hosts.append(um.group(1))
            elif name in ("ssh", "ssh-copy-id", "sftp") and not a.startswith("-"):
                f.hosts.append(a.split("@")[-1])
                break
    elif name == "socat":
        for a in args:
            sm = re.match(r"(?i)(?:tcp\d?|udp\d?|openssl|ssl):([^:,]+):", a)
            if sm:
                f.hosts.append(sm.group(1))
    elif name == "openssl" and "s_client" in args:
        for i, a in enumerate(args):
            if a == "-connect" and i + 1 < len(args):
                f.hosts.append(args[i + 1].rsplit(":", 1)[0])
    elif name in ("curl", "wget", "http", "xh", "aria2c", "lynx", "w3m", "links"):
        for a in args:
            if (
                not a.startswith("-")
                and "://" not in a
                and _HOSTLIKE_RE.match(a.split("/")[0].split(":")[0])
            ):
                f.hosts.append(a.split("/")[0].split(":")[0])

"""Python code, read with :mod:`ast`: what it would run, open, connect to and import.

:func:`scan_python` never executes the code. It resolves import aliases
(``import subprocess as sp``, ``from os import system``), and reports:

- ``shell``: command strings handed to a shell or exec (``os.system``, ``os.popen``,
  ``subprocess.*`` with a string or a list of literal words, ``pty.spawn``, ``os.exec*``);
  the caller feeds them back to :func:`hazmat.policy.shell.parse_shell`;
- ``opened``: ``(path, mode)`` of ``open()``/``io.open``/``pathlib.Path(...).read_text``
  and friends with literal paths;
- ``connects``: ``(host, port)`` of ``socket.connect``/``create_connection`` and URLs given
  to ``urllib``/``requests``/``httpx``/``http.client``;
- ``imports``, ``calls`` (dotted names), and facts used by detectors (``socket``,
  ``bind``, ``dup2``, ``dynamic_exec`` for ``exec``/``eval``/``compile`` of non-literal
  code, ``setuid``);
- ``code``: decoded payloads (``base64.b64decode("...")``, ``bytes.fromhex``,
  ``codecs.decode(...,"rot13")``) which are scanned again (bounded depth).

Code that does not parse is reported with ``error`` set; the raw text still reaches the
regex detectors.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import shlex
from dataclasses import dataclass, field

__all__ = ["PyFacts", "scan_python"]

_SHELL_CALLS = {
    "os.system",
    "os.popen",
    "os.popen2",
    "os.popen3",
    "commands.getoutput",
    "commands.getstatusoutput",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
}
_SUBPROCESS = {
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen",
    "asyncio.create_subprocess_shell",
    "asyncio.create_subprocess_exec",
    "os.spawnl",
    "os.spawnlp",
    "os.spawnv",
    "os.spawnvp",
    "os.execl",
    "os.execle",
    "os.execlp",
    "os.execv",
    "os.execve",
    "os.execvp",
    "os.execvpe",
    "os.posix_spawn",
    "os.posix_spawnp",
    "pty.spawn",
    "sh.Command",
    "pexpect.spawn",
    "pexpect.run",
}
_URL_CALLS = {
    "urllib.request.urlopen",
    "urllib.request.urlretrieve",
    "urllib.urlopen",
    "urllib2.urlopen",
    "requests.get",
    "requests.post",
    "requests.put",
    "requests.request",
    "requests.patch",
    "httpx.get",
    "httpx.post",
    "httpx.put",
    "httpx.stream",
    "urllib.request.Request",
    "http.client.HTTPConnection",
    "http.client.HTTPSConnection",
    "ftplib.FTP",
    "smtplib.SMTP",
    "paramiko.SSHClient",
    "wget.download",
    "aiohttp.ClientSession",
}
MAX_DEPTH = 3


@dataclass(slots=True)
class PyFacts:
    """What :func:`scan_python` found in one piece of code."""

    imports: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    shell: list[str] = field(default_factory=list)
    opened: list[tuple[str, str]] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    socket: bool = False
    bind: bool = False
    dup2: bool = False
    dynamic_exec: bool = False
    network_exec: bool = False
    """``exec``/``eval`` of something fetched over the network (download and execute)."""
    setuid: bool = False
    error: str = ""

    @property
    def network(self) -> bool:
        """The code can talk to the network."""
        return (
            self.socket
            or bool(self.connects)
            or bool(
                self.imports
                & {
                    "socket",
                    "requests",
                    "urllib",
                    "httpx",
                    "http",
                    "ftplib",
                    "smtplib",
                    "paramiko",
                    "aiohttp",
                    "urllib2",
                    "urllib3",
                    "telnetlib",
                    "dns",
                }
            )
        )


def scan_python(code: str, _depth: int = 0) -> PyFacts:
    """Scan python source; never raises (a syntax error sets ``error``)."""
    facts = PyFacts()
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError) as exc:
        facts.error = f"{type(exc).__name__}: {exc}"
        return facts
    _Scanner(facts, _depth).visit(tree)
    return facts


class _Scanner(ast.NodeVisitor):
    def __init__(self, facts: PyFacts, depth: int) -> None:
        self.f = facts
        self.depth = depth
        self.alias: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.f.imports.add(a.name.split(".")[0])
            self.alias[a.asname or a.name.split(".")[0]] = (
                a.name if a.asname else a.name.split(".")[0]
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        self.f.imports.add(mod.split(".")[0])
        for a in node.names:
            self.alias[a.asname or a.name] = f"{mod}.{a.name}"

    def dotted(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return self.alias.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else node.attr
        if isinstance(node, ast.Call):
            return self.dotted(node.func) + "()"
        return ""

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and len(node.value) > 2:
            self.f.strings.append(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        short = name.rsplit(".", 1)[-1]
        self.f.calls.add(name)
        args = node.args
        first = _literal(args[0]) if args else None
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in _SHELL_CALLS or (short == "system" and name.startswith("os")):
            if first is not None:
                self.f.shell.append(first)
        elif name.startswith(("os.exec", "os.spawn", "os.posix_spawn")) and len(args) > 1:
            rest = args[1:]
            if name.startswith("os.spawn"):
                rest = args[2:]
            if len(rest) == 1 and isinstance(rest[0], ast.List | ast.Tuple):
                cmd = _command_of(rest[0])
            else:
                cmd = _command_of(ast.List(elts=[a for a in rest if not isinstance(a, ast.Dict)]))
            if cmd is not None:
                self.f.shell.append(cmd)
        elif name in _SUBPROCESS or short in ("Popen", "check_output", "spawn"):
            cmd = _command_of(args[0] if args else kw.get("args"))
            if cmd is not None:
                self.f.shell.append(cmd)
        elif name in ("open", "io.open", "codecs.open", "os.open", "builtins.open"):
            mode_node = args[1] if len(args) > 1 else kw.get("mode") or kw.get("flags")
            mode = _literal(mode_node) if mode_node is not None else "r"
            if isinstance(mode_node, ast.Attribute | ast.BinOp):
                mode = "w"
            if first is not None:
                self.f.opened.append((first, mode or "r"))
        elif short in (
            "read_text",
            "read_bytes",
            "write_text",
            "write_bytes",
            "open",
        ) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            if isinstance(base, ast.Call) and base.args:
                path = _literal(base.args[0])
                if path is not None:
                    self.f.opened.append((path, "w" if short.startswith("write") else "r"))
        elif name in ("shutil.copy", "shutil.copyfile", "shutil.copy2", "shutil.move"):
            for a in args[:2]:
                p = _literal(a)
                if p is not None:
                    self.f.opened.append((p, "r" if a is args[0] else "w"))
        elif name in ("shutil.rmtree", "os.remove", "os.unlink", "os.rmdir", "os.removedirs"):
            if first is not None:
                self.f.shell.append(f"rm -rf {first}" if "rmtree" in name else f"rm {first}")
        elif name in ("os.chmod",) and len(args) > 1:
            mode_v = args[1]
            if (
                isinstance(mode_v, ast.Constant)
                and isinstance(mode_v.value, int)
                and mode_v.value & 0o6000
            ):
                self.f.setuid = True
                self.f.shell.append(f"chmod {mode_v.value:o} {first or ''}")
        elif name in ("os.setuid", "os.setreuid", "os.setresuid", "os.setgid"):
            self.f.setuid = True
        elif name.startswith("socket.") or short in ("socket", "create_connection"):
            self.f.socket = True
            if short == "create_connection" and args:
                self.f.connects.append(_addr(args[0]))
        elif name in _URL_CALLS or short in ("urlopen", "urlretrieve"):
            self.f.connects.append(first or "?")
            if short in ("urlretrieve", "download") and len(args) > 1:
                dest = _literal(args[1])
                if dest is not None:
                    self.f.opened.append((dest, "w"))
        elif name == "os.dup2" or short == "dup2":
            self.f.dup2 = True
        elif name in ("exec", "eval", "compile", "builtins.exec", "builtins.eval"):
            if first is not None:
                self.f.code.append(first)
            else:
                self.f.dynamic_exec = True
                inner = ast.dump(args[0]) if args else ""
                if any(k in inner for k in ("urlopen", "requests", "recv", "httpx", "urllib")):
                    self.f.network_exec = True
        if short in ("connect", "connect_ex", "sendto") and args:
            self.f.socket = True
            self.f.connects.append(_addr(args[-1] if short == "sendto" else args[0]))
        elif short in ("bind", "listen") and isinstance(node.func, ast.Attribute):
            self.f.bind = True
        self.decode(name, node)
        self.generic_visit(node)

    def decode(self, name: str, node: ast.Call) -> None:
        if self.depth >= MAX_DEPTH or not node.args:
            return
        raw = _literal(node.args[0])
        if raw is None:
            return
        out: str | None = None
        try:
            if name.endswith(
                ("b64decode", "decodebytes", "standard_b64decode", "urlsafe_b64decode")
            ):
                out = base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace")
            elif name.endswith("b32decode"):
                out = base64.b32decode(raw).decode("utf-8", "replace")
            elif name.endswith(("fromhex", "unhexlify", "a2b_hex")):
                out = binascii.unhexlify(raw).decode("utf-8", "replace")
            elif (
                name.endswith("decode")
                and len(node.args) > 1
                and _literal(node.args[1]) in ("rot13", "rot_13")
            ):
                out = codecs.decode(raw, "rot13")
        except (ValueError, binascii.Error):
            return
        if out:
            self.f.code.append(out)
            inner = scan_python(out, self.depth + 1)
            if not inner.error:
                _merge(self.f, inner)
            else:
                self.f.shell.append(out)


def _merge(into: PyFacts, other: PyFacts) -> None:
    into.imports |= other.imports
    into.calls |= other.calls
    into.shell += other.shell
    into.opened += other.opened
    into.connects += other.connects
    into.code += other.code
    into.socket |= other.socket
    into.bind |= other.bind
    into.dup2 |= other.dup2
    into.dynamic_exec |= other.dynamic_exec
    into.network_exec |= other.network_exec
    into.setuid |= other.setuid


def _literal(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        val = node.value
        return val.decode("latin-1") if isinstance(val, bytes) else val
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            else:
                parts.append("{}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _literal(node.left), _literal(node.right)
        if a is not None or b is not None:
            return (a or "") + (b or "")
    return None


def _command_of(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    s = _literal(node)
    if s is not None:
        return s
    if isinstance(node, ast.List | ast.Tuple):
        words = [_literal(e) for e in node.elts]
        vals = [w if w is not None else "$X" for w in words]
        if vals:
            return " ".join(shlex.quote(v) for v in vals)
    return None


def _addr(node: ast.expr) -> str:
    if isinstance(node, ast.Tuple) and node.elts:
        host = _literal(node.elts[0])
        port = node.elts[1] if len(node.elts) > 1 else None
        p = str(port.value) if isinstance(port, ast.Constant) else "?"
        return f"{host if host is not None else '?'}:{p}"
    s = _literal(node)
    return s if s is not None else "?"

"""What a table entry is (:class:`NetTool`) and what it returns (:class:`Cap`), and the
helpers every reader uses: options, endpoints, redirections, data inside a request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from hazmat.policy.detectors._common import flags
from hazmat.policy.endpoints import Endpoint, endpoints_of_args
from hazmat.policy.shell.commands import Cmd


@dataclass(frozen=True, slots=True)
class Cap:
    """One capability a command line asks for."""

    kind: str
    tool: str
    detail: str
    endpoint: Endpoint | None = None
    listen: bool = False
    addr: str | None = None
    """Bind address of a listener (``None``: the tool's default, usually every interface)."""
    program: str = ""
    """``exec``: the program wired to the socket."""
    path: str = ""
    """``upload``: the source (a path, ``-`` for stdin, ``args`` for data in the request);
    ``download``: the destination; ``serve``: the root served."""
    direction: str = ""
    """``tunnel``: ``in``, ``out`` or ``c2``."""


@dataclass(frozen=True, slots=True)
class NetTool:
    """One table entry: the tool's names, its reader and examples checked at load."""

    names: tuple[str, ...]
    read: Callable[[Cmd], list[Cap]]
    examples: tuple[tuple[str, str], ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------- helpers

_SHELLISH = re.compile(
    r"^(?:\S*/)?(?:ba|z|da|k|a|c|tc|fi|mk|r)?sh(?:\s+-[a-z]*i[a-z]*)?(?:\s+-[a-z]+)*$|"
    r"^(?:\S*/)?(?:ba|z|da|k)?sh\s+-[a-z]*i|^(?:\S*/)?busybox\s+(?:ba|a)?sh\b|"
    r"^(?:\S*/)?(?:python[\d.]*|perl|ruby|php|lua|node|irb|pwsh|powershell|cmd(?:\.exe)?|tclsh|"
    r"julia|jrunscript|jjs|expect)(?:\s+-[a-z]+)*\s*$|\bpty\.spawn|/bin/(?:ba|z|da|k)?sh\s+-i|"
    r"^(?:\S*/)?(?:ba|z|da|k|a|mk)?sh\s+(?:-[a-z]+\s+)*-c\b",
    re.I,
)


def shellish(program: str) -> bool:
    """``program`` starts a shell (interactive, or running inline commands with ``-c``) or a
    bare interpreter (reads code on stdin); a script file (``python3 handler.py``) is not."""
    p = program.strip().strip("'\"")
    return bool(p) and _SHELLISH.search(p) is not None


def bind_exposed(addr: str | None) -> bool:
    """A listener on ``addr`` accepts connections from other machines (None: all interfaces)."""
    if addr is None:
        return True
    a = addr.strip().strip("[]").lower()
    if a in ("", "0.0.0.0", "::", "*", "0", "any", "all", "0:0:0:0:0:0:0:0"):
        return True
    return not (a.startswith("127.") or a in ("localhost", "::1", "ip6-localhost"))


def _flags(args: list[str]) -> set[str]:
    """Short flags split and long flags as given (:func:`.._common.flags`)."""
    return flags(args)


def _opt(args: list[str], opts: tuple[str, ...], *, cluster: bool = True) -> str | None:
    """The value of the first of ``opts`` (``-x V``, ``-xV``, ``--opt=V``, ``-abx V``)."""
    shorts = {o[1] for o in opts if len(o) == 2 and o[0] == "-"}
    longs = tuple(o + "=" for o in opts if o.startswith("-") and len(o) > 2)
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else None
        if a in opts:
            return nxt
        if longs and a.startswith(longs):
            return a.split("=", 1)[1]
        if cluster and len(a) > 2 and a[0] == "-" and a[1] != "-":
            if a[-1] in shorts and a[1:].isalpha():
                return nxt
            if a[1] in shorts and not a[1:].isalpha():
                return a[2:]
    return None


def _eps(c: Cmd) -> list[Endpoint]:
    return endpoints_of_args(c.name if c.name not in _AS_FULL else "nc", c.args, c.redirects)


_AS_FULL = frozenset({"python", "python3", "php", "ruby", "kubectl", "git", "docker", "node"})


def _first_ep(c: Cmd) -> Endpoint | None:
    eps = _eps(c)
    return eps[0] if eps else None


def _stdin_file(c: Cmd) -> str | None:
    for op, t in c.redirects:
        if op.lstrip("0123456789") == "<" and t and t != "/dev/null" and "/dev/tcp" not in t:
            return t
    return None


def _stdout_file(c: Cmd) -> str | None:
    for op, t in c.redirects:
        o = op.lstrip("0123456789&")
        if op[:1] in ("2",):
            continue
        if o in (">", ">>", ">|") and t and t != "/dev/null" and not t.startswith("&"):
            if "/dev/tcp" in t or "/dev/udp" in t:
                continue
            return t
    return None


def _listen_addr_port(c: Cmd, eps: list[Endpoint]) -> tuple[str | None, str]:
    port = _opt(c.args, ("-p", "--port", "--local-port")) or ""
    addr = _opt(c.args, ("-s", "--source", "--bind", "--address", "--listen"), cluster=False)
    for e in eps:
        if e.how in ("pair", "host:port", "ip"):
            return e.host, e.port or port
    return addr, port


_DATA_SUBST = re.compile(r"\$\(|`|\$\{?\w+\}?|<\(")


def _carries_data(word: str) -> bool:
    """A word built from command output or a variable (data inside a request)."""
    return _DATA_SUBST.search(word) is not None

"""What a shell parse yields: :class:`Cmd` (one simple command as it would run) and
:class:`ShellParse`, and the names of shells and interpreters the walker follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_DEPTH = 6
MAX_TEXT = 200_000

SHELLS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash", "busybox"}
)
INTERPRETERS = frozenset(
    {
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "php",
        "node",
        "nodejs",
        "lua",
        "awk",
        "gawk",
        "mawk",
        "nawk",
        "tclsh",
        "irb",
        "jjs",
        "deno",
        "bun",
        "pwsh",
        "powershell",
        "julia",
        "rscript",
        "r",
        "wish",
        "groovy",
        "jrunscript",
        "expect",
        "luajit",
        "elixir",
        "erl",
    }
)


_VERSIONED = re.compile(
    r"(python[23]?|pypy3?)(?:\.\d+)+|(?:(lua|perl|ruby|php|node|tclsh|wish|gawk)[\d.]+)"
)


@dataclass(slots=True)
class Cmd:
    """One simple command as it would run."""

    argv: list[str]
    redirects: list[tuple[str, str]] = field(default_factory=list)
    """``(operator, target)`` pairs, e.g. ``(">>", "~/.bashrc")``, ``("<", "/etc/shadow")``."""
    assigns: list[tuple[str, str]] = field(default_factory=list)
    stdin: str | None = None
    """Here-doc or here-string text fed to the command, when literal."""
    via: str = ""
    """How it was reached: ``""`` at top level, else e.g. ``"bash -c"``, ``"sudo"``, ``"eval"``."""
    depth: int = 0
    root: bool = False
    """Run through sudo/doas/su/pkexec (asks for root)."""
    pipe_in: str | None = None
    """Name of the command whose stdout feeds this one in a pipeline."""
    name: str = ""
    """The command's base name, lower-cased (``/usr/bin/Curl`` -> ``curl``); set from argv."""

    def __post_init__(self) -> None:
        if not self.name and self.argv:
            name = self.argv[0].rsplit("/", 1)[-1].lower()
            m = _VERSIONED.fullmatch(name)
            self.name = (m.group(1) or m.group(2)) if m else name

    @property
    def args(self) -> list[str]:
        """The words after the command name."""
        return self.argv[1:]

    @property
    def line(self) -> str:
        """argv joined with spaces, then redirections (``> target``)."""
        parts = list(self.argv)
        for op, target in self.redirects:
            parts.append(f"{op}{target}" if op[0].isdigit() else f"{op} {target}")
        return " ".join(parts)


@dataclass(slots=True)
class ShellParse:
    """Everything :func:`parse_shell` saw in one command string."""

    commands: list[Cmd] = field(default_factory=list)
    pipelines: list[list[Cmd]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    """Text layers: the original, inner shell strings, decoded payloads."""
    code: list[tuple[str, str]] = field(default_factory=list)
    """``(language, source)`` of inline interpreter code (``python``, ``perl``, ...)."""
    functions: dict[str, str] = field(default_factory=dict)
    """Shell functions defined: name -> body text."""
    fork_bomb: bool = False
    errors: bool = False
    """The parser reported syntax errors somewhere (the rest was still walked)."""

"""Shell commands, parsed with tree-sitter-bash into the simple commands that would run.

:func:`parse_shell` turns a command string into a :class:`ShellParse`: a flat list of
:class:`Cmd` (argv words, redirections, assignments, stdin text), every pipeline, and
the text layers seen on the way (the original text, ``sh -c`` strings, ``eval``
strings, decoded payloads, ``perl -e``/``python -c`` code).

It follows, recursively (bounded depth):

- pipelines, ``&&``/``||``/``;`` lists, subshells, ``{ ...; }`` groups, functions,
  ``if``/``for``/``while``/``case`` bodies, command and process substitution;
- redirections (``>``, ``>>``, ``<``, ``&>``, ``<>``), here-docs and here-strings
  (their text becomes the command's stdin);
- ``sh -c``/``bash -c``/``su -c`` strings, ``eval``, ``ssh host CMD`` and wrappers
  (``sudo``, ``doas``, ``env``, ``nohup``, ``timeout``, ``nice``, ``setsid``, ``xargs``,
  ``find -exec``, ``chroot``, ``busybox``, ...): the wrapped command is emitted as
  its own :class:`Cmd` with ``via`` naming the wrapper;
- static decoding: ``echo``/``printf`` (``\\x..``, octal), ``$'...'``, here-docs,
  ``base64 -d``, ``base32 -d``, ``xxd -r -p``, ``rev``, ``tr`` (rot13), ``gunzip``,
  ``bunzip2``, ``xz -d`` are evaluated when their input is literal; a decoded
  payload piped into a shell is parsed as shell, into python is scanned with
  :mod:`hazmat.policy.pyscan`;
- word tricks: quotes and backslashes inside words (``r\\m``, ``"r""m"``),
  ``${IFS}``, literal variables assigned earlier in the same script (``a=rm; $a``),
  brace lists in command position (``{rm,-rf,/}``), and globs over well-known
  paths (``/???/c?t /e??/sh*w``).

It never executes anything. What it cannot know (the contents of files, the output
of real commands) is left as text (``$(...)``), and the sandbox monitors cover it.
The parser object is made once per thread and reused; parsing is pure.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from hazmat.policy.decode import c_unescape, looks_textual, static_output, to_bytes, to_text

__all__ = ["SHELLS", "Cmd", "ShellParse", "parse_shell"]

_LANGUAGE = Language(tree_sitter_bash.language())
_LOCAL = threading.local()


def _parser() -> Parser:
    """The parser of this thread (made once per thread, then reused)."""
    p: Parser | None = getattr(_LOCAL, "parser", None)
    if p is None:
        p = Parser(_LANGUAGE)
        _LOCAL.parser = p
    return p


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
_CODE_FLAGS = {
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "php": ("-r",),
    "node": ("-e", "--eval", "-p"),
    "nodejs": ("-e",),
    "lua": ("-e",),
    "deno": ("eval",),
    "bun": ("-e",),
    "pwsh": ("-c", "-Command"),
    "powershell": ("-c", "-Command"),
    "jjs": ("-e",),
    "julia": ("-e", "--eval", "-E", "--print"),
    "rscript": ("-e",),
    "r": ("-e",),
    "groovy": ("-e",),
    "jrunscript": ("-e",),
    "expect": ("-c",),
    "elixir": ("-e",),
    "erl": ("-eval",),
    "crystal": ("eval",),
    "luajit": ("-e",),
    "irb": ("-e",),
}
_MULTI_CODE_FLAGS = {
    "gdb": ("-ex", "--ex", "-iex", "--eval-command", "--init-eval-command"),
    "vim": ("-c", "--cmd"),
    "vi": ("-c", "--cmd"),
    "nvim": ("-c", "--cmd"),
    "ex": ("-c", "--cmd"),
    "rvim": ("-c", "--cmd"),
    "view": ("-c", "--cmd"),
}
"""Tools whose every value of these options is a command of their own language."""
_IFS = "\x00IFS\x00"
_KNOWN_PATHS = (
    "/bin/sh",
    "/bin/bash",
    "/bin/dash",
    "/bin/zsh",
    "/bin/cat",
    "/bin/nc",
    "/bin/netcat",
    "/bin/rm",
    "/bin/busybox",
    "/usr/bin/sh",
    "/usr/bin/bash",
    "/usr/bin/cat",
    "/usr/bin/nc",
    "/usr/bin/ncat",
    "/usr/bin/netcat",
    "/usr/bin/wget",
    "/usr/bin/curl",
    "/usr/bin/python3",
    "/usr/bin/python",
    "/usr/bin/perl",
    "/usr/bin/socat",
    "/usr/bin/base64",
    "/usr/bin/rm",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/etc/gshadow",
    "/etc/crontab",
    "/root/.ssh/id_rsa",
    "/root/.ssh/authorized_keys",
    "/root/flag.txt",
    "/proc/self/environ",
    "/proc/1/environ",
    "/proc/sys/kernel/core_pattern",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/dev/sda",
    "/dev/tcp",
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


def parse_shell(text: str) -> ShellParse:
    """Parse ``text`` as bash and return every command it would run.

    Never raises on bad input: a syntax error sets ``errors`` and what parsed is kept.
    """
    out = ShellParse()
    _Walker(out).script(text[:MAX_TEXT], depth=0, via="", root=False)
    return out


# ----------------------------------------------------------------------------- walking

_WRAPPER_OPTS_WITH_ARG = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U", "--user", "--group"},
    "doas": {"-u", "-C"},
    "env": {"-u", "-C", "-S", "--unset", "--chdir"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "--class", "--classdata"},
    "stdbuf": {"-i", "-o", "-e"},
    "xargs": {
        "-I",
        "-n",
        "-P",
        "-L",
        "-d",
        "-E",
        "-s",
        "-a",
        "--max-args",
        "--max-procs",
        "--delimiter",
        "--arg-file",
        "-i",
    },
    "runuser": {"-u", "-g", "-G", "--user", "--group"},
    "flock": {"-w", "-E", "--timeout", "-c"},
    "watch": {"-n", "-d", "--interval"},
    "strace": {"-o", "-e", "-p", "-s", "-u"},
    "ltrace": {"-o", "-e", "-p", "-s"},
    "taskset": set(),
    "proxychains": {"-f"},
    "proxychains4": {"-f"},
    "chrt": set(),
    "unshare": set(),
    "sg": set(),
    "script": {"-c", "--command", "-t", "-T"},
    "systemd-run": {"-p", "--property", "-u", "--unit", "--uid", "--on-calendar", "--gid", "-E"},
    "sshpass": {"-p", "-f", "-d", "-P"},
}
_SIMPLE_WRAPPERS = {
    "run0",
    "nohup",
    "setsid",
    "time",
    "command",
    "builtin",
    "exec",
    "torify",
    "torsocks",
    "unbuffer",
    "caffeinate",
    "pkexec",
    "nocorrect",
    "noglob",
    "chronic",
    "catchsegv",
    "faketime",
}
_ROOT_WRAPPERS = {"sudo", "doas", "pkexec", "runuser", "su", "run0"}


class _Walker:
    def __init__(self, out: ShellParse) -> None:
        self.out = out
        self.vars: dict[str, str] = {}

    # entry points -------------------------------------------------------------

    def script(self, text: str, *, depth: int, via: str, root: bool) -> None:
        if depth > MAX_DEPTH or not text.strip():
            return
        self.out.texts.append(text)
        if "{" in text and "," in text:
            text = _BRACE_CMD.sub(lambda m: m.group(1) + m.group(2).replace(",", " "), text)
        src = text.encode("utf-8", errors="surrogateescape")
        tree = _parser().parse(src)
        if tree.root_node.has_error:
            self.out.errors = True
        self.block(tree.root_node, depth, via, root)

    def block(self, node: Node, depth: int, via: str, root: bool) -> None:
        t = node.type
        if t == "pipeline":
            self.pipeline(node, depth, via, root)
        elif t in ("command", "redirected_statement"):
            self.pipeline_of([node], depth, via, root)
        elif t == "function_definition":
            name_node = node.child_by_field_name("name")
            body = node.child_by_field_name("body")
            fname = _node_text(name_node) if name_node is not None else ""
            btext = _node_text(body) if body is not None else ""
            self.out.functions[fname] = btext
            if fname and re.search(
                rf"(?<![\w-]){re.escape(fname)}\s*\|\s*&?\s*{re.escape(fname)}(?![\w-])", btext
            ):
                self.out.fork_bomb = True
            if body is not None:
                self.block(body, depth, via, root)
        elif t == "variable_assignment":
            self.assignment(node, depth, via, root)
        elif t == "declaration_command":
            for ch in node.named_children:
                if ch.type == "variable_assignment":
                    self.assignment(ch, depth, via, root)
        else:
            for ch in node.named_children:
                if ch.type in ("heredoc_body", "heredoc_start", "heredoc_end", "comment"):
                    continue
                if ch.type in _WORDISH:
                    self.word(ch, depth, via, root)
                else:
                    self.block(ch, depth, via, root)

    def assignment(self, node: Node, depth: int, via: str, root: bool) -> None:
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        val = self.word(value, depth, via, root) if value is not None else ""
        if name is not None:
            self.vars[_node_text(name)] = val

    # pipelines ----------------------------------------------------------------

    def pipeline(self, node: Node, depth: int, via: str, root: bool) -> None:
        stages = [c for c in node.named_children if c.type != "comment"]
        self.pipeline_of(stages, depth, via, root)

    def pipeline_of(self, stages: list[Node], depth: int, via: str, root: bool) -> None:
        cmds: list[Cmd] = []
        for st in stages:
            got = self.stage(st, depth, via, root)
            cmds.extend(got)
        if not cmds:
            return
        self.out.pipelines.append(cmds)
        data: bytes | None = None
        prev: str | None = None
        for i, c in enumerate(cmds):
            c.pipe_in = prev
            prev = c.name
            if i > 0 or c.stdin is not None:
                stdin = to_bytes(c.stdin) if c.stdin is not None else data
                if stdin is not None:
                    self.feed(c, stdin, depth, root)
            data = static_output(c, data if i > 0 else None)
            last = i + 1 == len(cmds)
            # decoded but not executed: still worth a look as text
            shown = c.name in ("echo", "printf", "cat")
            if data is not None and last and not shown and looks_textual(data):
                self.out.texts.append(to_text(data))

    def stage(self, node: Node, depth: int, via: str, root: bool) -> list[Cmd]:
        """Walk one pipeline stage; return the commands that take part in the pipe."""
        if node.type == "command":
            return self.command(node, [], depth, via, root)
        if node.type == "redirected_statement":
            body = node.child_by_field_name("body")
            redirects: list[tuple[str, str]] = []
            stdin: str | None = None
            tail_pipes: list[Node] = []
            for ch in node.children:
                if ch.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                    r, s, extra = self.redirect(ch, depth, via, root)
                    redirects.extend(r)
                    if s is not None:
                        stdin = s
                    tail_pipes.extend(extra)
            if body is None:
                bare = Cmd(
                    argv=[], redirects=redirects, stdin=stdin, via=via, depth=depth, root=root
                )
                self.out.commands.append(bare)
                return [bare]
            if body.type == "command":
                cmds = self.command(body, redirects, depth, via, root, stdin=stdin)
            else:
                before = len(self.out.commands)
                self.block(body, depth, via, root)
                cmds = self.out.commands[before:][-1:]
                for c in cmds:
                    c.redirects.extend(redirects)
                    if stdin is not None and c.stdin is None:
                        c.stdin = stdin
            for p in tail_pipes:
                # `cat <<EOF | sh`: tree-sitter hangs the pipe under the here-doc
                for st in p.named_children:
                    cmds.extend(self.stage(st, depth, via, root))
            return cmds
        if node.type in ("subshell", "compound_statement"):
            before = len(self.out.commands)
            self.block(node, depth, via, root)
            # a group in a pipe: its first command reads, its last writes
            return self.out.commands[before:][-1:]
        self.block(node, depth, via, root)
        return []

    def redirect(
        self, node: Node, depth: int, via: str, root: bool
    ) -> tuple[list[tuple[str, str]], str | None, list[Node]]:
        t = node.type
        if t == "heredoc_redirect":
            body = ""
            pipes: list[Node] = []
            redirects: list[tuple[str, str]] = []
            for ch in node.named_children:
                if ch.type == "heredoc_body":
                    body = _heredoc_text(ch)
                elif ch.type == "pipeline":
                    pipes.append(ch)
                elif ch.type == "file_redirect":
                    r, _, _ = self.redirect(ch, depth, via, root)
                    redirects.extend(r)
                elif ch.type in ("command", "list"):
                    pipes.append(ch)
            return redirects, body, pipes
        if t == "herestring_redirect":
            target = node.named_children[-1] if node.named_children else None
            val = self.word(target, depth, via, root) if target is not None else ""
            return [], val + "\n", []
        op = ""
        fd = ""
        dest = ""
        for ch in node.children:
            if ch.type == "file_descriptor":
                fd = _node_text(ch)
            elif not ch.is_named or ch.type == "ERROR":
                op += _node_text(ch)
            elif not dest:
                dest = self.word(ch, depth, via, root)
        return [(fd + op.strip(), dest)], None, []

    # commands -----------------------------------------------------------------

    def command(
        self,
        node: Node,
        redirects: list[tuple[str, str]],
        depth: int,
        via: str,
        root: bool,
        stdin: str | None = None,
    ) -> list[Cmd]:
        argv: list[str] = []
        assigns: list[tuple[str, str]] = []
        redirects = list(redirects)
        prev_end = -1
        for ch in node.named_children:
            t = ch.type
            glued = ch.start_byte == prev_end and t not in (
                "variable_assignment",
                "file_redirect",
                "heredoc_redirect",
                "herestring_redirect",
            )
            prev_end = ch.end_byte
            if t == "variable_assignment":
                n = ch.child_by_field_name("name")
                v = ch.child_by_field_name("value")
                val = self.word(v, depth, via, root) if v is not None else ""
                assigns.append((_node_text(n) if n is not None else "", val))
            elif t == "command_name":
                argv.extend(
                    self.words(ch.named_children[0], depth, via, root) if ch.named_children else []
                )
            elif t in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                r, s, _ = self.redirect(ch, depth, via, root)
                redirects.extend(r)
                if s is not None:
                    stdin = s
            elif t == "comment":
                continue
            else:
                got = self.words(ch, depth, via, root)
                if glued and argv and got:
                    # `a`b`c`: tree-sitter leaves adjacent pieces unconcatenated
                    argv[-1] += got[0]
                    got = got[1:]
                argv.extend(got)
        if argv and re.fullmatch(r"\{[^{}]*,[^{}]*\}", argv[0]):
            argv = argv[0][1:-1].split(",") + argv[1:]
        argv = [_resolve_glob(a) for a in argv]
        cmd = Cmd(
            argv=argv,
            redirects=redirects,
            assigns=assigns,
            stdin=stdin,
            via=via,
            depth=depth,
            root=root,
        )
        if not argv:
            for name, val in assigns:
                self.vars[name] = val
        self.out.commands.append(cmd)
        inner = self.unwrap(cmd, depth, root)
        return [inner if inner is not None else cmd]

    def feed(self, cmd: Cmd, data: bytes, depth: int, root: bool) -> None:
        """``cmd`` reads ``data`` on stdin: follow it when ``cmd`` is an interpreter."""
        name, args = cmd.name, cmd.args
        if not looks_textual(data):
            return
        text = to_text(data)
        if name in SHELLS and not any(
            a == "-c" or (a.startswith("-") and "c" in a[1:] and not a.startswith("--"))
            for a in args
        ):
            positional = [a for a in args if not a.startswith("-")]
            if name == "busybox":
                positional = positional[1:]
            if not positional:
                self.script(text, depth=depth + 1, via=f"stdin:{name}", root=root or cmd.root)
        elif name.startswith("python") and not any(a == "-c" for a in args):
            positional = [a for a in args if not a.startswith("-")]
            if not positional or positional == ["-"] or "-" in args:
                self.out.code.append(("python", text))
        elif name in INTERPRETERS:
            self.out.code.append((name, text))
        elif name in ("at", "batch"):
            # the job an `at` reads on stdin runs later, as shell
            self.script(text, depth=depth + 1, via=f"stdin:{name}", root=root or cmd.root)

    def unwrap(self, cmd: Cmd, depth: int, root: bool) -> Cmd | None:
        """Emit the command a wrapper runs; return it (the pipe's real member)."""
        if depth > MAX_DEPTH:
            return None
        name, args = cmd.name, cmd.args
        is_root = root or cmd.root
        if name in SHELLS or name in {"su"}:
            code = _dash_c(args)
            if name == "busybox" and args and args[0] in SHELLS:
                code = _dash_c(args[1:])
            if code is not None:
                to_root = name == "su" and su_target(args) == "root"
                self.script(code, depth=depth + 1, via=f"{name} -c", root=is_root or to_root)
                return None
            if name == "busybox" and args:
                return self.emit(cmd, args, "busybox", depth, is_root)
            return None
        if name == "eval":
            self.script(" ".join(args), depth=depth + 1, via="eval", root=is_root)
            return None
        if name in ("ssh",):
            rest = _ssh_remote_command(args)
            if rest:
                self.script(" ".join(rest), depth=depth + 1, via="ssh", root=is_root)
            return None
        if name.startswith("python") or name == "pypy3":
            code = _opt_value(args, ("-c",))
            if code is not None:
                self.out.code.append(("python", code))
            return None
        if name in _CODE_FLAGS:
            code = _opt_value(args, _CODE_FLAGS[name])
            if code is not None:
                self.out.code.append((name, code))
            return None
        if name in _MULTI_CODE_FLAGS:
            opts = _MULTI_CODE_FLAGS[name]
            vals = [args[i + 1] for i, a in enumerate(args[:-1]) if a in opts]
            vals += [a[1:] for a in args if a.startswith("+") and len(a) > 1]
            if vals:
                self.out.code.append((name, "\n".join(vals)))
            for v in vals:
                self.embedded(v, depth, is_root)
            return None
        if name == "sqlite3":
            dots = [a for a in args if a.startswith(".")]
            if dots:
                self.out.code.append(("sqlite3", "\n".join(dots)))
            return None
        if name in ("awk", "gawk", "mawk", "nawk"):
            prog = next((a for a in args if not a.startswith("-")), None)
            if prog:
                self.out.code.append(("awk", prog))
            return None
        if name == "find":
            for i, a in enumerate(args):
                if a in ("-exec", "-execdir", "-ok", "-okdir"):
                    rest = []
                    for w in args[i + 1 :]:
                        if w in (";", "\\;", "+"):
                            break
                        rest.append(w)
                    if rest:
                        self.emit(cmd, rest, "find -exec", depth, is_root)
            return None
        if name == "xargs":
            rest = _skip_opts(args, _WRAPPER_OPTS_WITH_ARG["xargs"])
            return self.emit(cmd, rest or ["echo"], "xargs", depth, is_root)
        if name == "env":
            rest = _skip_opts(args, _WRAPPER_OPTS_WITH_ARG["env"])
            extra = []
            while rest and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", rest[0]):
                k, _, v = rest.pop(0).partition("=")
                extra.append((k, v))
            if rest:
                inner = self.emit(cmd, rest, "env", depth, is_root)
                if inner is not None:
                    inner.assigns.extend(extra)
                return inner
            return None
        if name == "timeout":
            rest = _skip_opts(args, _WRAPPER_OPTS_WITH_ARG["timeout"])
            return self.emit(cmd, rest[1:], "timeout", depth, is_root) if len(rest) > 1 else None
        if name in ("chroot",):
            rest = _skip_opts(args, {"--userspec", "--groups"})
            return self.emit(cmd, rest[1:] or ["/bin/sh"], "chroot", depth, True) if rest else None
        if name == "su":
            return None
        if name in _WRAPPER_OPTS_WITH_ARG:
            if name == "script":
                code = _opt_value(args, ("-c", "--command"))
                if code is not None:
                    self.script(code, depth=depth + 1, via="script", root=is_root)
                return None
            rest = _skip_opts(args, _WRAPPER_OPTS_WITH_ARG[name])
            if name in ("taskset", "chrt") and rest:
                rest = rest[1:]
            if name == "sg" and rest:
                rest = rest[1:]
                if rest and len(rest) == 1:
                    self.script(rest[0], depth=depth + 1, via="sg", root=is_root)
                    return None
            if name == "flock" and rest:
                rest = rest[1:]
            if rest:
                return self.emit(cmd, rest, name, depth, is_root or name in _ROOT_WRAPPERS)
            return None
        if name in _SIMPLE_WRAPPERS:
            rest = list(args)
            while rest and rest[0].startswith("-") and name not in ("exec",):
                rest.pop(0)
            if name == "exec":
                while rest and rest[0] in ("-c", "-l", "-a"):
                    rest = rest[2:] if rest[0] == "-a" else rest[1:]
            if rest:
                return self.emit(cmd, rest, name, depth, is_root or name in _ROOT_WRAPPERS)
        return None

    def embedded(self, command: str, depth: int, root: bool) -> None:
        """A debugger's or editor's command that hands code to another language
        (``python ...``, ``:py3 ...``, ``:lua ...``) or to a shell (``!cmd``, ``shell cmd``)."""
        m = _EMBEDDED.match(command)
        if m is None:
            return
        lang, body = m.group(1), m.group(2)
        if lang.startswith("py"):
            self.out.code.append(("python", body))
        elif lang in ("lua", "perl", "ruby"):
            self.out.code.append((lang, body))
        elif body.strip():
            self.script(body, depth=depth + 1, via="shell escape", root=root)

    def emit(self, outer: Cmd, argv: list[str], via: str, depth: int, root: bool) -> Cmd | None:
        if not argv:
            return None
        inner = Cmd(
            argv=list(argv),
            redirects=list(outer.redirects),
            stdin=outer.stdin,
            via=via,
            depth=depth + 1,
            root=root or via in _ROOT_WRAPPERS,
        )
        self.out.commands.append(inner)
        deeper = self.unwrap(inner, depth + 1, inner.root)
        return deeper if deeper is not None else inner

    # words --------------------------------------------------------------------

    def words(self, node: Node, depth: int, via: str, root: bool) -> list[str]:
        val = self.word(node, depth, via, root)
        if _IFS in val:
            return [w for w in val.split(_IFS) if w]
        return [val]

    def word(self, node: Node | None, depth: int, via: str, root: bool) -> str:
        if node is None:
            return ""
        t = node.type
        if t == "word":
            return _unescape_word(_node_text(node))
        if t == "raw_string":
            return _node_text(node)[1:-1]
        if t == "ansi_c_string":
            return c_unescape(_node_text(node)[2:-1])
        if t in ("string", "translated_string"):
            parts = []
            for ch in node.named_children:
                if ch.type == "string_content":
                    parts.append(re.sub(r'\\([$`"\\\n])', r"\1", _node_text(ch)))
                else:
                    parts.append(self.word(ch, depth, via, root))
            return "".join(parts).replace(_IFS, " ")
        if t == "concatenation":
            return "".join(self.word(ch, depth, via, root) for ch in node.named_children)
        if t in ("simple_expansion", "expansion"):
            names = [c for c in node.named_children if c.type == "variable_name"]
            if names and len(node.named_children) == 1:
                var = _node_text(names[0])
                if var == "IFS":
                    return _IFS
                if var in self.vars:
                    # unquoted: split on blanks (a string around it joins them back)
                    return re.sub(r"[ \t\n]+", _IFS, self.vars[var])
            return _node_text(node)
        if t == "command_substitution":
            before = len(self.out.commands)
            self.block(node, depth, via, root)
            got = self.out.commands[before:]
            if got and len(self.out.pipelines) and self.out.pipelines[-1]:
                data: bytes | None = None
                for i, c in enumerate(self.out.pipelines[-1]):
                    data = static_output(c, data if i > 0 else None)
                if data is not None and looks_textual(data):
                    return to_text(data).rstrip("\n")
            return _node_text(node)
        if t == "process_substitution":
            self.block(node, depth, via, root)
            return _node_text(node)
        if t in ("number", "variable_name", "special_variable_name", "regex", "extglob_pattern"):
            return _node_text(node)
        if t == "brace_expression":
            return _node_text(node)
        return _node_text(node)


_EMBEDDED = re.compile(
    r"^\s*:?\s*(python3?|py3?|pyx|pythonx|lua|perl|ruby|!|shell|sh|terminal)\s*(.*)$", re.S
)
_BRACE_CMD = re.compile(r"(^|[;&|(`]\s*|\$\(\s*)\{([^{}\s'\"]+,[^{}\s'\"]*)\}", re.M)
_WORDISH = frozenset({"command_substitution", "process_substitution"})


def _node_text(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", errors="surrogateescape") if raw is not None else ""


def _heredoc_text(node: Node) -> str:
    return _node_text(node)


_WORD_ESC = re.compile(r"\\(.)", re.S)


def _unescape_word(s: str) -> str:
    if "\\" in s:
        s = _WORD_ESC.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), s)
    return s


def _resolve_glob(word: str) -> str:
    if word.startswith("/") and ("?" in word or "*" in word or "[" in word) and len(word) < 80:
        segs = word.split("/")
        if all(s in ("", "*") for s in segs):
            return word
        for p in _KNOWN_PATHS:
            psegs = p.split("/")
            if (
                len(psegs) == len(segs)
                and all(fnmatch.fnmatchcase(a, b) for a, b in zip(psegs, segs, strict=True))
                and any(("?" in s or "[" in s or (s != "*" and "*" in s)) for s in segs)
            ):
                return p
    return word


def _dash_c(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a == "-c" or (a.startswith("-") and not a.startswith("--") and "c" in a[1:]):
            return args[i + 1] if i + 1 < len(args) else None
        if a == "--":
            return None
        if not a.startswith("-") and not a.startswith("+"):
            if i + 1 < len(args) and args[i + 1] == "-c":
                continue  # `su root -c CMD`
            return None
    return None


def _opt_value(args: list[str], opts: tuple[str, ...]) -> str | None:
    for i, a in enumerate(args):
        if a in opts:
            return args[i + 1] if i + 1 < len(args) else None
        for o in opts:
            if o.startswith("-") and not o.startswith("--") and a.startswith(o) and len(a) > len(o):
                return a[len(o) :]
    return None


def _skip_opts(args: list[str], with_arg: set[str]) -> list[str]:
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return args[i + 1 :]
        if not a.startswith("-") or a == "-":
            break
        if a in with_arg:
            i += 2
            continue
        i += 1
    return args[i:]


_SSH_OPTS_WITH_ARG = set("bcDEeFIiJLlmOopQRSWw")


def _ssh_remote_command(args: list[str]) -> list[str]:
    i = 0
    host_seen = False
    while i < len(args):
        a = args[i]
        if not host_seen and a.startswith("-") and len(a) > 1:
            body = a[1:]
            k = next((j for j, ch in enumerate(body) if ch in _SSH_OPTS_WITH_ARG), -1)
            # `-fNR 80:h:80`: the first letter that takes a value takes the rest or the next word
            i += 2 if k >= 0 and k == len(body) - 1 else 1
            continue
        if not host_seen:
            host_seen = True
            i += 1
            continue
        return args[i:]
    return []


_SU_OPTS_WITH_ARG = {
    "-c",
    "--command",
    "-s",
    "--shell",
    "-g",
    "--group",
    "-G",
    "--supp-group",
    "-w",
    "--whitelist-environment",
}


def su_target(args: list[str]) -> str:
    """The user ``su ARGS`` switches to (``root`` when none is named)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in _SU_OPTS_WITH_ARG:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        return a
    return "root"

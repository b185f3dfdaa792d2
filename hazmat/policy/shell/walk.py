"""The walk over tree-sitter-bash's tree: :func:`parse_shell` and the walker that
emits every simple command, follows wrappers, inner shell strings and literal stdin.

The parser object is made once per thread and reused; parsing is pure.
"""

from __future__ import annotations

import re
import threading

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from hazmat.policy.decode import c_unescape, looks_textual, static_output, to_bytes, to_text
from hazmat.policy.shell.commands import INTERPRETERS, MAX_DEPTH, MAX_TEXT, SHELLS, Cmd, ShellParse
from hazmat.policy.shell.words import (
    _BRACE_CMD,
    _IFS,
    _WORDISH,
    _heredoc_text,
    _node_text,
    _resolve_glob,
    _unescape_word,
)
from hazmat.policy.shell.wrappers import (
    _CODE_FLAGS,
    _EMBEDDED,
    _MULTI_CODE_FLAGS,
    _ROOT_WRAPPERS,
    _SIMPLE_WRAPPERS,
    _WRAPPER_OPTS_WITH_ARG,
    _dash_c,
    _opt_value,
    _skip_opts,
    _ssh_remote_command,
    su_target,
)

_LANGUAGE = Language(tree_sitter_bash.language())
_LOCAL = threading.local()


def _parser() -> Parser:
    """The parser of this thread (made once per thread, then reused)."""
    p: Parser | None = getattr(_LOCAL, "parser", None)
    if p is None:
        p = Parser(_LANGUAGE)
        _LOCAL.parser = p
    return p


def parse_shell(text: str) -> ShellParse:
    """Parse ``text`` as bash and return every command it would run.

    Never raises on bad input: a syntax error sets ``errors`` and what parsed is kept.
    """
    out = ShellParse()
    _Walker(out).script(text[:MAX_TEXT], depth=0, via="", root=False)
    return out


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

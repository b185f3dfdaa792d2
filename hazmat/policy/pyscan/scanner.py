"""The scanner: one pass of :mod:`ast` over python code, resolving names through imports
and assignments and evaluating constant expressions; :func:`scan_python` runs it.
"""

from __future__ import annotations

import ast
import codecs
import shlex

from hazmat.policy.pyscan.calls import (
    _DECODERS,
    _EXEC,
    _IMPORTERS,
    _SHELL_CALLS,
    _STAR_NAMES,
    _SUBPROCESS,
    _URL_CALLS,
    MAX_CONST,
    MAX_DEPTH,
)
from hazmat.policy.pyscan.decoders import _b64, _decode, _textual, _unhex
from hazmat.policy.pyscan.pyfacts import PyFacts, _merge


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
    """One pass over a module: resolves names through imports and assignments (a small
    data flow: ``a = __import__``, ``s = a("socket")``, ``g = getattr(os, "system")``,
    ``x = "..."``) and evaluates constant expressions (concatenation, ``join``, ``chr``,
    slices, base64/hex/zlib/rot13 decoding) so calls through aliases and code hidden in
    ``exec`` strings are seen."""

    def __init__(self, facts: PyFacts, depth: int) -> None:
        self.f = facts
        self.depth = depth
        self.alias: dict[str, str] = {}
        self.consts: dict[str, str] = {}
        self.numbers: dict[str, int] = {}
        self.star: set[str] = set()

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
            if a.name == "*":
                self.star.add(mod)
            else:
                self.alias[a.asname or a.name] = f"{mod}.{a.name}"

    # names ------------------------------------------------------------------------

    def dotted(self, node: ast.expr) -> str:
        """The dotted name ``node`` refers to, through imports and assignments."""
        if isinstance(node, ast.Name):
            got = self.alias.get(node.id)
            if got is not None:
                return got
            for mod in self.star:
                if node.id in _STAR_NAMES.get(mod, ()):
                    return f"{mod}.{node.id}"
            return node.id
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else node.attr
        if isinstance(node, ast.Call):
            fn = self.dotted(node.func)
            if fn in _IMPORTERS and node.args:
                modname = self.const(node.args[0])
                if modname:
                    self.f.imports.add(modname.split(".")[0])
                    return modname
            if fn in ("getattr", "builtins.getattr") and len(node.args) >= 2:
                attr = self.const(node.args[1])
                if attr:
                    base = self.dotted(node.args[0])
                    return f"{base}.{attr}" if base else attr
            return fn + "()"
        if isinstance(node, ast.Subscript):
            key = self.const(node.slice) if isinstance(node.slice, ast.expr) else None
            base = self.dotted(node.value)
            if key and base in ("sys.modules", "__builtins__.__dict__", "builtins.__dict__"):
                if base == "sys.modules":
                    self.f.imports.add(key.split(".")[0])
                return key
            if key and base in ("globals()", "locals()", "vars()"):
                return self.alias.get(key, key)
        return ""

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        targets: list[tuple[ast.expr, ast.expr]] = []
        for t in node.targets:
            if isinstance(t, ast.Name):
                targets.append((t, node.value))
            elif (
                isinstance(t, ast.Tuple)
                and isinstance(node.value, ast.Tuple)
                and len(t.elts) == len(node.value.elts)
            ):
                targets.extend(zip(t.elts, node.value.elts, strict=True))
        for t, v in targets:
            if not isinstance(t, ast.Name):
                continue
            if isinstance(v, ast.Constant) and type(v.value) is int:
                self.numbers[t.id] = v.value
            val = self.const(v)
            if val is not None and not isinstance(v, ast.JoinedStr):
                self.consts[t.id] = val
                continue
            self.consts.pop(t.id, None)
            ref = (
                self.dotted(v)
                if isinstance(v, ast.Name | ast.Attribute | ast.Call | ast.Subscript)
                else ""
            )
            if (ref and not ref.endswith("()")) or ref.endswith(
                ("socket.socket()", "requests.Session()", "httpx.Client()")
            ):
                self.alias[t.id] = ref
            elif ref.endswith("()"):
                self.alias.pop(t.id, None)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.generic_visit(node)
        val = self.const(node.value)
        if val is not None and isinstance(node.target, ast.Name):
            self.consts[node.target.id] = val

    # constants ----------------------------------------------------------------------

    def const(self, node: ast.AST | None, _depth: int = 0) -> str | None:
        """Evaluate ``node`` statically to a string (bytes as latin-1), or None."""
        if node is None or _depth > 24:
            return None
        d = _depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, str):
                return v
            if isinstance(v, bytes):
                return v.decode("latin-1")
            return None
        if isinstance(node, ast.Name):
            return self.consts.get(node.id)
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for part in node.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    parts.append(part.value)
                elif isinstance(part, ast.FormattedValue):
                    inner = self.const(part.value, d)
                    parts.append(inner if inner is not None else "{}")
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = self.const(node.left, d), self.const(node.right, d)
            if a is not None or b is not None:
                out = (a or "") + (b or "")
                return out if len(out) <= MAX_CONST else None
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return self.const(node.left, d)
        if isinstance(node, ast.Subscript):
            base = self.const(node.value, d)
            sl = node.slice
            if (
                base is not None
                and isinstance(sl, ast.Slice)
                and sl.lower is None
                and sl.upper is None
                and isinstance(sl.step, ast.UnaryOp)
                and isinstance(sl.step.op, ast.USub)
                and isinstance(sl.step.operand, ast.Constant)
                and sl.step.operand.value == 1
            ):
                return base[::-1]
            return None
        if isinstance(node, ast.Call):
            return self.const_call(node, d)
        return None

    def const_call(self, node: ast.Call, d: int) -> str | None:
        fn = node.func
        args = node.args
        if isinstance(fn, ast.Attribute):
            attr = fn.attr
            if attr in ("decode", "encode", "strip", "lower", "upper") and not (
                attr == "decode" and len(args) > 1
            ):
                base = self.const(fn.value, d)
                if base is None:
                    return None
                if attr == "decode" and args:
                    enc = self.const(args[0], d)
                    if enc in ("rot13", "rot_13"):
                        return codecs.decode(base, "rot13")
                    if enc == "hex":
                        return _unhex(base)
                    if enc in ("base64", "base_64"):
                        return _b64(base)
                if attr == "strip":
                    return base.strip()
                if attr == "lower":
                    return base.lower()
                if attr == "upper":
                    return base.upper()
                return base
            if attr == "replace" and len(args) >= 2:
                b0, a, b = (self.const(x, d) for x in (fn.value, args[0], args[1]))
                if b0 is not None and a is not None and b is not None:
                    out = b0.replace(a, b)
                    return out if len(out) <= MAX_CONST else None
                return None
            if attr == "join" and len(args) == 1:
                sep = self.const(fn.value, d)
                items = self.const_items(args[0], d)
                if sep is not None and items is not None:
                    return sep.join(items)
                return None
        name = self.dotted(fn)
        short = name.rsplit(".", 1)[-1]
        if short in ("str", "bytes", "bytearray") and args:
            if short != "str" and isinstance(args[0], ast.List | ast.Tuple):
                items = self.const_items(args[0], d, ints=True)
                return "".join(items) if items is not None else None
            return self.const(args[0], d)
        if short == "chr" and args and isinstance(args[0], ast.Constant):
            v = args[0].value
            return chr(v) if isinstance(v, int) and 0 <= v < 0x110000 else None
        if not args:
            return None
        if short in _DECODERS or (name.startswith("codecs.") and short in ("decode",)):
            raw = self.const(args[0], d)
            if raw is None:
                return None
            dec = _decode(name, short, raw, self.const(args[1], d) if len(args) > 1 else None)
            return dec if dec is not None and len(dec) <= MAX_CONST else None
        return None

    def const_items(self, node: ast.expr, d: int, *, ints: bool = False) -> list[str] | None:
        """The strings of a literal list/tuple (or ``map(chr, [...])``), when all are known."""
        elts: list[ast.expr]
        if isinstance(node, ast.List | ast.Tuple):
            elts = list(node.elts)
        elif (
            isinstance(node, ast.Call)
            and self.dotted(node.func) == "map"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "chr"
            and isinstance(node.args[1], ast.List | ast.Tuple)
        ):
            elts = list(node.args[1].elts)
            ints = True
        elif isinstance(node, ast.ListComp | ast.GeneratorExp):
            gen = node.generators[0] if len(node.generators) == 1 else None
            if (
                gen is not None
                and isinstance(node.elt, ast.Call)
                and self.dotted(node.elt.func) == "chr"
                and isinstance(gen.iter, ast.List | ast.Tuple)
            ):
                elts = list(gen.iter.elts)
                ints = True
            else:
                return None
        else:
            return None
        out: list[str] = []
        for e in elts[:MAX_CONST]:
            if ints and isinstance(e, ast.Constant) and isinstance(e.value, int):
                if not 0 <= e.value < 0x110000:
                    return None
                out.append(chr(e.value))
                continue
            v = self.const(e, d)
            if v is None:
                return None
            out.append(v)
        return out

    # calls ----------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        short = name.rsplit(".", 1)[-1]
        self.f.calls.add(name)
        args = node.args
        first = self.const(args[0]) if args else None
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in _SHELL_CALLS or (short == "system" and name.startswith("os")):
            if first is not None:
                self.f.shell.append(first)
        elif name.startswith(("os.exec", "os.spawn", "os.posix_spawn")) and len(args) > 1:
            rest = args[1:]
            if name.startswith("os.spawn"):
                rest = args[2:]
            if len(rest) == 1 and isinstance(rest[0], ast.List | ast.Tuple):
                cmd = self.command_of(rest[0])
            else:
                cmd = self.command_of(
                    ast.List(elts=[a for a in rest if not isinstance(a, ast.Dict)])
                )
            if cmd is not None:
                self.f.shell.append(cmd)
        elif name in _SUBPROCESS or short in ("Popen", "check_output", "spawn"):
            cmd = self.command_of(args[0] if args else kw.get("args"))
            if cmd is not None:
                self.f.shell.append(cmd)
        elif name in ("open", "io.open", "codecs.open", "os.open", "builtins.open"):
            mode_node = args[1] if len(args) > 1 else kw.get("mode") or kw.get("flags")
            mode = self.const(mode_node) if mode_node is not None else "r"
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
                path = self.const(base.args[0])
                if path is not None:
                    self.f.opened.append((path, "w" if short.startswith("write") else "r"))
        elif name in ("shutil.copy", "shutil.copyfile", "shutil.copy2", "shutil.move"):
            for a in args[:2]:
                p = self.const(a)
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
                self.f.connects.append(self.addr(args[0]))
        elif name in _URL_CALLS or short in ("urlopen", "urlretrieve"):
            self.f.connects.append(first or "?")
            if short in ("urlretrieve", "download") and len(args) > 1:
                dest = self.const(args[1])
                if dest is not None:
                    self.f.opened.append((dest, "w"))
        elif name == "os.dup2" or short == "dup2":
            self.f.dup2 = True
        elif name in _EXEC or (
            short in ("exec", "eval") and name.startswith(("builtins", "__builtins__"))
        ):
            if first is not None:
                self.f.code.append(first)
                self.run_code(first)
            else:
                self.f.dynamic_exec = True
                inner = ast.dump(args[0]) if args else ""
                if any(
                    k in inner
                    for k in ("urlopen", "requests", "recv", "httpx", "urllib", "read", "text")
                ) and (self.f.network or "recv" in inner):
                    self.f.network_exec = True
        if short in ("connect", "connect_ex", "sendto") and args:
            self.f.socket = True
            self.f.connects.append(self.addr(args[-1] if short == "sendto" else args[0]))
        elif short in ("bind", "listen") and isinstance(node.func, ast.Attribute):
            self.f.bind = True
        self.decode(name, short, node)
        self.generic_visit(node)

    def run_code(self, code: str) -> None:
        """Code handed to ``exec``/``eval``: scanned as python (bounded depth)."""
        if self.depth >= MAX_DEPTH:
            return
        inner = scan_python(code, self.depth + 1)
        if not inner.error:
            _merge(self.f, inner)

    def decode(self, name: str, short: str, node: ast.Call) -> None:
        """A decoded literal payload is code the call may run: keep it and scan it."""
        if (
            self.depth >= MAX_DEPTH
            or not node.args
            or (short not in _DECODERS and not (name.startswith("codecs.") and short == "decode"))
        ):
            return
        out = self.const(node)
        if not out or not _textual(out):
            return
        self.f.code.append(out)
        inner = scan_python(out, self.depth + 1)
        if not inner.error:
            _merge(self.f, inner)
        else:
            self.f.shell.append(out)

    def command_of(self, node: ast.expr | None) -> str | None:
        if node is None:
            return None
        s = self.const(node)
        if s is not None:
            return s
        if isinstance(node, ast.List | ast.Tuple):
            words = [self.const(e) for e in node.elts]
            vals = [w if w is not None else "$X" for w in words]
            if vals:
                return " ".join(shlex.quote(v) for v in vals)
        return None

    def addr(self, node: ast.expr) -> str:
        if isinstance(node, ast.Tuple) and node.elts:
            host = self.const(node.elts[0])
            port = node.elts[1] if len(node.elts) > 1 else None
            p = str(port.value) if isinstance(port, ast.Constant) else "?"
            if isinstance(port, ast.Name) and port.id in self.numbers:
                p = str(self.numbers[port.id])
            return f"{host if host is not None else '?'}:{p}"
        s = self.const(node)
        return s if s is not None else "?"

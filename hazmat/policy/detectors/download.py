"""Download and execute: fetched content run by a shell or interpreter."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import INTERPRETERS, SHELLS, Facts, gated, positional
from hazmat.policy.detectors.c2 import call_caps
from hazmat.policy.detectors.toolnet.table import TOOLS, capabilities
from hazmat.policy.langs import code_capabilities

_FETCH = {
    "iwr",
    "invoke-webrequest",
    "irm",
    "curl",
    "wget",
    "fetch",
    "lwp-download",
    "lwp-request",
    "get",
    "http",
    "https",
    "xh",
    "aria2c",
    "axel",
    "tftp",
    "ftp",
    "lftp",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "openssl",
    "busybox",
    "python",
    "python3",
    "powershell",
    "certutil",
    "bitsadmin",
    "scp",
    "rsync",
    "gsutil",
    "aws",
    "smbclient",
    "git",
}
_RUNNERS = (
    SHELLS | INTERPRETERS | {"source", ".", "eval", "exec", "sudo", "iex", "invoke-expression"}
)
_SUBST = gated(
    re.compile(
        r"(?:\b(?:ba|z|da|k|a)?sh|\beval|\bsource|(?:^|[;&|\s])\.|\bpython[\d.]*|\bperl|\bruby|\bphp|\bnode|"
        r"\bexec)\b[^|;&\n]*(?:\$\(|<\(|`)\s*(?:\S*/)?(?:curl|wget|fetch|lwp-\w+|GET|http|nc|ncat|busybox\s+wget|"
        r"cat\s+<\s*/dev/tcp)\b",
        re.I,
    )
)
_CODE_FETCH_EXEC = gated(
    re.compile(
        r"(?i)(?:\beval|\bexec|\bsystem|\bpassthru|\binclude|\brequire|Invoke-Expression|\biex|"
        r"\bFunction\s*\(|new\s+Function)\s*\(?\s*(?:[\w:.$>-]*\s*\(\s*)?(?:file_get_contents|get|open|"
        r"URI\.open|Net::HTTP|LWP|fetch|urlopen|http|https?\.get|require\(['\"]https?|curl|wget|"
        r"DownloadString|IWR|Invoke-WebRequest)",
    )
)
_URL = re.compile(r"(?i)\b(?:https?|ftp|tftp)://")


def _downloaded_paths(f: Facts) -> set[str]:
    out: set[str] = set()
    for _, k in call_caps(f):
        if k.kind == "download" and k.path not in ("", ".", "file", "-"):
            out.add(k.path)
    for c in f.commands:
        name, args = c.name, c.args
        if name == "busybox" and args[:1] and args[0] in ("wget", "tftp"):
            name, args = args[0], args[1:]
        if name in (
            "curl",
            "wget",
            "fetch",
            "aria2c",
            "axel",
            "tftp",
            "lwp-download",
            "ftp",
            "scp",
            "rsync",
            "nc",
            "ncat",
            "netcat",
        ):
            for i, a in enumerate(args):
                if a in ("-o", "-O", "--output", "--output-document", "-out") and i + 1 < len(args):
                    out.add(args[i + 1])
                elif a.startswith("--output-document=") or a.startswith("--output="):
                    out.add(a.split("=", 1)[1])
                elif a.startswith("-O") and len(a) > 2 and name == "wget":
                    out.add(a[2:])
                elif "://" in a or re.match(r"^[\w.-]+@?[\w.-]*:", a):
                    base = a.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
                    if base:
                        out.add(base)
            for op, t in c.redirects:
                if op.lstrip("0123456789") in (">", ">>"):
                    out.add(t)
            if name in ("tftp", "ftp", "lftp"):
                for i, a in enumerate(args):
                    if a in ("get", "-g", "mget") and i + 1 < len(args):
                        out.add(args[i + 1])
                m = re.search(r"\bget\s+(\S+)", " ".join(args))
                if m:
                    out.add(m.group(1))
            if name in ("scp", "rsync", "lwp-download") and positional(args):
                out.add(positional(args)[-1])
    for pipe in f.pipelines:
        if pipe and pipe[0].name in ("curl", "wget", "fetch", "nc", "ncat", "tftp"):
            for c in pipe[1:]:
                for op, t in c.redirects:
                    if op.lstrip("0123456789") in (">", ">>"):
                        out.add(t)
    for c in f.commands:
        if c.name == "git" and c.args[:1] == ["clone"]:
            pos = positional(c.args[1:])
            if pos:
                dest = pos[1] if len(pos) > 1 else pos[0].rstrip("/").rsplit("/", 1)[-1]
                out.add(dest.removesuffix(".git").rstrip("/") + "/")
    changed = True
    while changed:  # compiled from a downloaded source
        changed = False
        bases = {p.rsplit("/", 1)[-1] for p in out}
        for c in f.commands:
            if c.name in ("gcc", "cc", "clang", "g++", "tcc") and any(
                a in out or a.rsplit("/", 1)[-1] in bases for a in c.args
            ):
                for i, a in enumerate(c.args):
                    if a == "-o" and i + 1 < len(c.args) and c.args[i + 1] not in out:
                        out.add(c.args[i + 1])
                        changed = True
    return {p for p in out if p and p not in ("-", "/dev/null")}


def detect(f: Facts) -> str | None:
    """Downloaded content piped into a shell/interpreter, sourced, or saved and then run."""
    for pipe in f.pipelines:
        seen_fetch: str | None = None
        for c in pipe:
            name = c.name
            if (
                seen_fetch
                and (name in _RUNNERS)
                and (name not in ("python", "python3") or "-c" not in c.args)
            ):
                return f"{seen_fetch} output piped into {name}"
            is_fetch = (
                name in _FETCH
                and (
                    name
                    not in (
                        "busybox",
                        "openssl",
                        "python",
                        "python3",
                        "git",
                        "aws",
                        "gsutil",
                        "socat",
                    )
                    or (name == "busybox" and c.args[:1] in (["wget"], ["nc"]))
                    or (name == "openssl" and "s_client" in c.args)
                    or (
                        name == "socat" and any(re.match(r"(?i)tcp|ssl|openssl", a) for a in c.args)
                    )
                )
            ) or any("/dev/tcp/" in t for _, t in c.redirects)
            is_fetch = is_fetch or (
                c.name in TOOLS and any(k.kind == "relay" and not k.listen for k in capabilities(c))
            )
            if is_fetch and (
                _URL.search(c.line)
                or name in ("nc", "ncat", "netcat", "tftp", "socat", "openssl")
                or any("/dev/tcp/" in t for _, t in c.redirects)
                or len(c.args) >= 1
            ):
                seen_fetch = name
    for c in f.commands:
        if c.name in _RUNNERS:
            for a in c.args:
                if a.startswith("<(") and re.search(r"\b(curl|wget|fetch|nc|GET)\b", a):
                    return f"{c.name} runs a process substitution that downloads: {a[:80]}"
    extracted = any(
        pipe[0].name in ("curl", "wget", "fetch")
        and any(
            (c.name == "tar" and re.search(r"^-?\w*x", c.args[0] if c.args else ""))
            or c.name in ("unzip", "bsdtar", "cpio", "funzip")
            for c in pipe[1:]
        )
        for pipe in f.pipelines
    )
    if extracted:
        dirs = [
            c.args[i + 1].rstrip("/") + "/"
            for pipe in f.pipelines
            for c in pipe
            if c.name in ("tar", "bsdtar", "unzip")
            for i, a in enumerate(c.args[:-1])
            if a in ("-C", "--directory", "-d")
        ]
        for c in f.commands:
            target = c.argv[0] if c.argv else ""
            if c.name in _RUNNERS and c.args and not c.args[0].startswith("-"):
                target = c.args[0]
            if (
                target.startswith("./")
                or (c.name in SHELLS and target and "/" in target)
                or any(target.startswith(d) for d in dirs)
            ):
                return f"runs code extracted from a download: {c.line[:80]}"
    blob = f.blob
    m = _SUBST.search(blob) if ("$(" in blob or "<(" in blob or "`" in blob) else None
    if m:
        return f"runs downloaded text: {m.group(0)[:100]}"
    paths = _downloaded_paths(f)
    if paths:
        names = {p.rsplit("/", 1)[-1] for p in paths}
        for c in f.commands:
            if not c.argv:
                continue
            argv0 = c.argv[0]
            base0 = argv0.rsplit("/", 1)[-1]
            dirs = [p for p in paths if p.endswith("/")]
            if any(
                a.startswith(d) or a.startswith("./" + d) or a.startswith("/tmp/" + d)
                for d in dirs
                for a in [argv0, *positional(c.args[:1])]
            ) and (c.name in _RUNNERS or argv0.startswith((".", "/"))):
                return f"runs code from a downloaded repository: {c.line[:80]}"
            if argv0 in paths or (
                (argv0.startswith("./") or argv0.startswith("/")) and base0 in names
            ):
                return f"runs downloaded file {argv0}"
            if c.name in _RUNNERS | {"chmod"}:
                for a in positional(c.args):
                    if a in paths or a.rsplit("/", 1)[-1] in names:
                        if c.name == "chmod":
                            mode = c.args[0] if c.args else ""
                            if (
                                "x" in mode
                                or re.match(r"^[0-7]?[0-7]*[1357][0-7]*$", mode)
                                or mode == "+s"
                            ):
                                return f"makes downloaded file executable: {c.line[:80]}"
                        else:
                            return f"{c.name} runs downloaded file {a}"
    py = f.py
    if py is not None and (py.network_exec or (py.connects and py.dynamic_exec)):
        return "python executes content fetched from the network"
    if py is not None and py.connects and py.shell:
        dl = {p.rsplit("/", 1)[-1] for p, m in py.opened if "w" in m}
        for s in py.shell:
            if any(d and d in s for d in dl) and re.search(r"chmod|\./|sh\b|python|exec", s):
                return f"python downloads then runs: {s[:80]}"
        dl_full = {p for p, m in py.opened if "w" in m}
        if dl_full and any(s.split(" ", 1)[0] in dl_full for s in py.shell):
            return "python downloads a file and runs it"
    for lang, code in f.code:
        if _URL.search(code) or "http" in code:
            m2 = _CODE_FETCH_EXEC.search(code)
            if m2:
                return f"{lang} evaluates fetched code: {m2.group(0)[:80]}"
        if lang != "python":
            caps = code_capabilities(lang, code)
            if "fetch" in caps and ("eval" in caps or "exec" in caps):
                how = caps.get("eval") or caps.get("exec")
                return f"{lang} fetches code and runs it ({caps['fetch']!r} then {how!r})"
    for c in f.commands:
        if c.name in ("deno", "bun", "npx", "bunx", "go", "uvx", "pipx") and any(
            re.match(r"(?i)^(?:https?|git\+https?)://", a) for a in c.args
        ):
            return f"{c.name} runs code straight from a URL: {c.line[:80]}"
        if c.name in SHELLS | INTERPRETERS:
            for op, t in c.redirects:
                if op.lstrip("0123456789") == "<" and (
                    "/dev/tcp/" in t
                    or (t.startswith("<(") and re.search(r"\b(?:curl|wget|nc)\b", t))
                ):
                    return f"{c.name} runs what it reads from {t[:60]}"
    return None

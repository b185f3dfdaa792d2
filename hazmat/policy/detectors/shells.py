"""Reverse and bind shells: an interactive shell wired to a network socket."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Cmd, Facts, flags, gated, is_shell, search
from hazmat.policy.detectors.c2 import call_caps, outside
from hazmat.policy.detectors.toolnet.base import shellish
from hazmat.policy.detectors.toolnet.table import TOOLS
from hazmat.policy.facts import SOCKET_TOOLS
from hazmat.policy.langs import code_capabilities

_NET = SOCKET_TOOLS
_SOCKET_CODE = gated(
    re.compile(
        r"socket|fsockopen|TCPSocket|TCPServer|/inet/(?:tcp|udp)|net\.Socket|net\.connect|"
        r"net\.createServer|IO::Socket|ztcp|tcp_connect|stream_socket_(?:client|server)|Socket\.new|"
        r"new\s+Socket|s_client|/dev/(?:tcp|udp)/|createConnection|require\(['\"]net['\"]\)|"
        r"net\.Dial|DialTCP|UDPSocket|TCPClient|Net::Telnet|connect\(\(",
        re.I,
    )
)
_SHELL_CODE = gated(
    re.compile(
        r"/bin/(?:ba|z|da|k|a)?sh\b|\b(?:ba|z|da)?sh\s+-i\b|cmd\.exe|powershell|\bexec\s*[(\"'{]|"
        r"\bexec\s+\w|spawn\s*\(|\bpty\b|popen|\bsystem\b|proc_open|shell_exec|passthru|child_process|"
        r"IO\.popen|os\.execute|\bgetline\b|\[['\"](?:ba)?sh['\"]|\"(?:ba)?sh\"|'(?:ba)?sh'|"
        r"\biex\b|Invoke-Expression|ProcessBuilder|getRuntime\(\)\.exec|callCommand|Process\.run",
        re.I,
    )
)
_LISTEN_CODE = gated(
    re.compile(
        r"\.bind\s*\(|listen\s*\(|TCPServer|createServer|stream_socket_server|"
        r"LocalPort|-listen|\bbind\s*\(",
        re.I,
    )
)
_PAYLOAD = gated(
    re.compile(
        r"(?i)\b(?:shell_(?:reverse|bind)_tcp|reverse_(?:tcp|https?)|meterpreter|"
        r"bind_tcp|shell_reverse)\b"
    )
)
_FALLBACK = gated(
    re.compile(
        r"\b(?:nc|ncat|netcat|nc\.traditional)\b[^\n|;]*\s-[a-z]*[ec]\s+['\"]?(?:/bin/|/usr/bin/)?"
        r"(?:ba|z|da|k)?sh\b|"
        r"\b(?:ba|z|da)?sh\s+-i\b[^\n]*\|\s*(?:nc|ncat|netcat|telnet|openssl)\b|"
        r"\b(?:nc|ncat|netcat|telnet)\s+[\w.-]+\s+\d+\s*\|\s*(?:/bin/)?(?:ba|z|da)?sh\b|"
        r"/dev/(?:tcp|udp)/[^/\s]+/\d+\s+0>&1"
    )
)
_LOOP_EXEC = re.compile(r"while\s+read[^\n]*do\s+(?:eval\s+)?\\?\$\w+|\beval\s+\$")
_DEV_LINE = gated(re.compile(r"[^\n]*/dev/(?:tcp|udp)/[^\n]*"))
_FDS = re.compile(r"(?:\d?[<>]&\s*\d|<>\s*/dev/(?:tcp|udp)|exec\s+\d+\s*<>)")


_SHELLISH = re.compile(
    r"(?:^|[/'\"\s:=])(?:ba|z|da|k|a|c|tc|fi)?sh\b|"
    r"\b(?:python[\d.]*|perl|ruby|php|lua|node|irb|pwsh|powershell|cmd(?:\.exe)?)"
    r"(?:\s+-i)?\s*(?:$|[,'\"])|\bpty\b",
    re.I,
)


def _opt_after(args: list[str], opts: tuple[str, ...]) -> str | None:
    """The value of the first of ``opts`` in ``args`` (also ``-lvnpe VALUE``, ``--opt=VALUE``)."""
    shorts = {o[1] for o in opts if not o.startswith("--")}
    longs = tuple(o + "=" for o in opts if o.startswith("--"))
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a in opts:
            return nxt
        if longs and a.startswith(longs):
            return a.split("=", 1)[1]
        if len(a) > 2 and a[0] == "-" and a[1] != "-" and a[-1] in shorts:
            return nxt
    return None


def _net_cmd(c: Cmd) -> bool:
    if c.name in _NET or c.name in _RELAYS:
        return True
    if c.name == "openssl" and ("s_client" in c.args or "s_server" in c.args):
        return True
    if c.name == "curl" and any(
        a.startswith(("telnet://", "dict://", "gopher://")) for a in c.args
    ):
        return True
    if c.name == "busybox" and c.args[:1] and c.args[0] in ("nc", "telnet"):
        return True
    return any("/dev/tcp/" in t or "/dev/udp/" in t for _, t in c.redirects)


def _listening(c: Cmd) -> bool:
    fl = flags(c.args)
    if c.name == "socat":
        return any(re.match(r"(?i)(?:tcp\d?|udp\d?|openssl|ssl)-listen", a) for a in c.args)
    if c.name == "openssl":
        return "s_server" in c.args
    return bool(fl & {"-l", "--listen"}) or c.name in ("telnetd", "tcpserver", "tcpsvd")


_RELAYS = frozenset({"socket", "websocat", "wscat", "whois", "finger", "rlogin", "rsh", "nc6"})
_NOT_GENERIC = frozenset(
    {"ssh", "su", "sudo", "doas", "docker", "podman", "kubectl", "script", "tmux", "screen",
     "env", "timeout", "xargs", "chroot", "setsid", "nohup", "exec", "find", "strace", "ltrace",
     "flock", "watch", "busybox", "systemd-run", "unshare", "nsenter", "runuser", "sg",
     "firejail", "bwrap", "lxc-attach", "vagrant", "expect", "gdb", "echo", "printf", "sshpass",
     "time", "nice", "ionice", "stdbuf", "taskset", "chrt", "pkexec", "torsocks", "proxychains",
     "proxychains4", "command", "builtin", "eval", "source", ".", "bash", "sh", "zsh", "dash",
     "grep", "git", "make", "parallel", "entr", "faketime", "catchsegv", "unbuffer", "rlwrap"}
)  # fmt: skip
_LISTEN_FLAG = re.compile(r"^(?:-[a-zA-Z]*[ls][a-zA-Z]*|--listen|--server|-server|--bind)$")


def _by_mechanism(f: Facts) -> tuple[str, str] | None:
    """The mechanisms: a program wired to a socket by a known tool (the tool table), code
    with a socket primitive and an exec/shell primitive (the language table), and any
    other tool given a shell command together with an endpoint or a listening port."""
    for _, k in call_caps(f):
        if k.kind == "exec" and shellish(k.program):
            if k.listen:
                return "bind", k.detail
            if k.endpoint is None or outside(f, k.endpoint) or k.endpoint.host:
                return "reverse", k.detail
    for lang, code in f.code:
        if lang == "python":
            continue
        caps = code_capabilities(lang, code)
        if (
            ("socket" in caps or "listen" in caps)
            and ("exec" in caps or "dup" in caps or ("shell" in caps and "socket" in caps))
            and ("exec" in caps or "shell" in caps)
        ):
            kind = "bind" if "listen" in caps else "reverse"
            prims = ", ".join(
                f"{k} {v!r}" for k, v in caps.items() if k in ("socket", "listen", "exec", "dup")
            )
            return kind, f"{lang} wires a socket to a program ({prims})"
    for idx, c in enumerate(f.commands):
        if c.name in _NOT_GENERIC or c.name in TOOLS or not c.args:
            continue
        prog = next(
            (a for a in c.args if " " in a.strip() or "/" in a or a.isalpha() if shellish(a)), None
        )
        if prog is None:
            continue
        listening = any(_LISTEN_FLAG.match(a) for a in c.args) and any(a.isdigit() for a in c.args)
        ext = [e for e in f.external_endpoints(idx)]
        if ext:
            return (
                "reverse",
                f"{c.name} gets a shell command ({prog}) and an outside endpoint ({ext[0].host})",
            )
        if listening:
            return "bind", f"{c.name} gets a shell command ({prog}) and a listening port"
    return None


def _classify(f: Facts) -> tuple[str, str] | None:
    got = _classify_known(f)
    if got is not None:
        return got
    return _by_mechanism(f)


def _classify_known(f: Facts) -> tuple[str, str] | None:
    cmds = f.commands
    for c in cmds:
        name, args = c.name, c.args
        if name == "busybox" and args[:1] == ["nc"]:
            c = Cmd(argv=args, redirects=c.redirects)
            name, args = c.name, c.args
        if name in _NET - {"socat"}:
            opts: tuple[str, ...] = ("-e", "-c", "--exec", "--sh-exec", "--lua-exec")
            if name in ("rcat", "pwncat", "pwncat-cs"):
                opts += ("-s", "--shell")
            exe = _opt_after(args, opts)
            if exe is not None and (
                _SHELLISH.search(exe) or "--sh-exec" in args or "--lua-exec" in args
            ):
                return ("bind" if _listening(c) else "reverse"), f"{name} -e: {c.line[:100]}"
        if name == "socat":
            joined = " ".join(args).lower()
            m_exec = re.search(r"\b(?:exec|system):([^,]*)", joined)
            if (
                m_exec
                and _SHELLISH.search(m_exec.group(1).replace("'", " "))
                and re.search(r"(?:tcp|udp|ssl|openssl)", joined)
            ):
                return ("bind" if _listening(c) else "reverse"), f"socat exec: {c.line[:100]}"
        if name == "socat" and re.search(
            r"(?i)file:[^,\s]*tty[^\s]*,raw|pty,[^\s]*listen|listen[^\s]*\s+\S*pty", " ".join(args)
        ):
            return "bind", f"socat shell handler (raw tty on a listening socket): {c.line[:100]}"
        if name == "script" and re.search(
            r"-\w*c\w*\s+['\"]?(?:/bin/|/usr/bin/)?(?:ba|z|da)?sh['\"]?(?:\s|$)",
            " ".join(args) + " ",
        ):
            return "reverse", f"tty upgrade with script (as after a reverse shell): {c.line[:80]}"
        if name == "xterm" and "-display" in args:
            return "reverse", f"xterm to remote display: {c.line[:80]}"
    dev_tcp = any("/dev/tcp/" in t or "/dev/udp/" in t for c in cmds for _, t in c.redirects) or (
        "/dev/tcp/" in f.blob or "/dev/udp/" in f.blob
    )
    if dev_tcp:
        shell = any(is_shell(c) for c in cmds)
        loop = _LOOP_EXEC.search(f.blob) is not None
        if (
            (shell and _FDS.search(f.blob))
            or (loop and _FDS.search(f.blob))
            or re.search(r"(?:ba|z|da|k)?sh\s+-i\b[^\n]*/dev/(?:tcp|udp)", f.blob)
        ):
            return "reverse", f"shell on /dev/tcp: {search(_DEV_LINE, f.blob)}"
    for pipe in f.pipelines:
        if len(pipe) < 2:
            continue
        nets = [c for c in pipe if _net_cmd(c)]
        shells = [
            c for c in pipe if is_shell(c) or (c.name.startswith("python") and "pty" in c.line)
        ]
        if nets and shells:
            kind = "bind" if any(_listening(c) for c in nets) else "reverse"
            return (
                kind,
                f"{nets[0].name} piped with {shells[0].name}: "
                f"{' | '.join(x.line for x in pipe)[:120]}",
            )
    if "mkfifo" in f.names() or "mknod" in f.names():
        nets = [c for c in cmds if _net_cmd(c)]
        if nets and any(is_shell(c) for c in cmds):
            kind = "bind" if any(_listening(c) for c in nets) else "reverse"
            return kind, f"fifo relay between {nets[0].name} and a shell"
    py = f.py
    if (
        py is not None
        and py.socket
        and (
            py.dup2
            or "pty.spawn" in py.calls
            or any(re.search(r"(?:^|[/'\" ])(?:ba|z|da)?sh(?:['\" ]|$)|-i\b", s) for s in py.shell)
            or (
                any(
                    "subprocess" in c and ("Popen" in c or "call" in c or "run" in c)
                    for c in py.calls
                )
                and any(re.search(r"\b(?:ba|z|da)?sh\b", s) for s in py.strings)
            )
        )
    ):
        return ("bind" if py.bind else "reverse"), "python socket wired to a shell"
    layers = list(f.code)
    if f.parse_errors:  # not shell at all (code pasted as a command): look at it as code
        # (/dev/tcp and `exec N<>` are shell; the structural checks above judged them)
        layers.append(("text", re.sub(r"/dev/(?:tcp|udp)/\S*|\bexec\s+\d+\s*<>", " ", f.raw)))
    for lang, code in layers:
        if lang == "python":
            continue
        if _SOCKET_CODE.search(code) and _SHELL_CODE.search(code):
            kind = "bind" if _LISTEN_CODE.search(code) else "reverse"
            return kind, f"{lang} socket wired to a shell: {code[:100]}"
    if "ztcp" in f.blob and re.search(r"zsh\b", f.blob) and re.search(r"&\$REPLY", f.blob):
        return "reverse", "zsh ztcp shell"
    if (
        py is not None
        and "pty.spawn" in py.calls
        and any(re.search(r"(?:^|/)(?:ba|z|da)?sh$", s) for s in py.strings + py.shell)
    ):
        return "reverse", "pty shell upgrade (pty.spawn of a shell, as after a reverse shell)"
    runs_source = any(
        (c.name == "go" and c.args[:1] == ["run"])
        or c.name in ("gcc", "cc", "clang", "g++", "tcc", "rustc", "javac")
        or (c.name in ("python", "python2", "python3", "perl", "ruby", "php", "node", "lua")
            and any(re.search(r"\.(?:py|pl|rb|php|js|lua)$", a) for a in c.args))
        for c in f.commands
    )  # fmt: skip
    written = bool(f.contents) or re.search(r"\becho\b|\bprintf\b|<<", f.blob) is not None
    if runs_source and written and _SOCKET_CODE.search(f.blob) and _SHELL_CODE.search(f.blob):
        kind = "bind" if _LISTEN_CODE.search(f.blob) else "reverse"
        return kind, "source written and run here wires a socket to a shell"
    fb = search(_FALLBACK, f.blob)
    if fb:
        return ("bind" if re.search(r"\s-l|listen", fb) else "reverse"), f"shell relay: {fb}"
    pl = search(_PAYLOAD, f.blob)
    if pl:
        return ("bind" if "bind" in pl.lower() else "reverse"), f"shell payload: {pl}"
    return None


def _classified(f: Facts) -> tuple[str, str] | None:
    if "shells" not in f.memo:
        f.memo["shells"] = _classify(f)
    got = f.memo["shells"]
    return got if isinstance(got, tuple) else None


def detect_reverse(f: Facts) -> str | None:
    """A shell whose stdin/stdout is a connection to a remote host."""
    got = _classified(f)
    return got[1] if got and got[0] == "reverse" else None


def detect_bind(f: Facts) -> str | None:
    """A shell served on a listening socket."""
    got = _classified(f)
    return got[1] if got and got[0] == "bind" else None

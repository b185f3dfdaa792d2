"""Network endpoints named anywhere in a call, and where each one sits relative to the task.

A policy that knows *where* a command sends or fetches data can judge a tool it has
never seen. :func:`endpoints_of_args` reads one command's words and
:func:`endpoints_of_text` the string literals of inline code; both return
:class:`Endpoint` records. Forms understood:

- URLs of any scheme (``gopher://h:70/``, ``ldap://``, ``rest:http://``), host and port;
- ``/dev/tcp/HOST/PORT`` and ``/dev/udp/HOST/PORT``;
- ``user@host`` and ``user@host:path`` (ssh, scp, rsync, finger);
- ``host:port`` as a whole word or after ``=`` (``cancel -h HOST:PORT``,
  ``--address=0.0.0.0:80``), socat's ``TCP:host:port``;
- host options followed by a host (``-h HOST``, ``--host``, ``--server``, ``-connect``)
  with ``-p``/``--port`` for the port;
- a positional host followed by a positional port (``socket HOST PORT``, ``nc -nv H P``);
- IPv4 and IPv6 literals inside a word;
- names with a public-looking top-level domain (``x.evil.com``) in positional words.

:func:`classify` places a host: ``loopback``, ``declared`` (the task's services and
allowlist), ``service`` (a single-label name when the task did not say which services it
has), ``external``, or ``placeholder`` (``$HOST``, ``<ip>``, ``ATTACKER_IP``: a value
filled in later, treated as external). :func:`encoded_label` finds a DNS label that
carries data (long, hex, base32/64).

Pure functions of strings; nothing resolves a name or opens a socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "DATA_COMMANDS",
    "FILE_EXTS",
    "URL_ONLY_COMMANDS",
    "Endpoint",
    "classify",
    "encoded_label",
    "endpoints_of_args",
    "endpoints_of_text",
    "host_like",
    "is_external",
    "port_like",
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One network destination named in a call."""

    host: str
    port: str = ""
    """The port as written (digits, or a placeholder such as ``$PORT``), or ``""``."""
    how: str = ""
    """``url``, ``dev-tcp``, ``user@host``, ``host:port``, ``flag``, ``pair``, ``ip``, ``name``,
    ``literal`` (a string in inline code)."""
    scheme: str = ""
    text: str = ""
    """The word it was read from (shortened), for evidence."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FILE_EXTS = _words(
    """py pyc pyi pyw ipynb txt md rst json jsonl yaml yml toml ini cfg conf lock log csv tsv
    xml html htm css scss js mjs cjs ts tsx jsx vue svelte c h cc cpp cxx hpp hh go rs rb pl pm
    php java kt kts scala swift m mm cs fs vb lua jl r sql sh bash zsh fish ps1 bat cmd exe dll
    so dylib a o obj class jar war whl egg gz tgz bz2 xz zst zip tar rar 7z deb rpm apk iso img
    bin dat db sqlite pdf png jpg jpeg gif svg ico webp mp3 mp4 wav avi mov pem key crt cer csr
    der pub env sample bak tmp swp orig patch diff out err pid sock service timer socket
    mount target spec tf tfvars hcl proto graphql gql mod sum properties gradle pom xsd dtd wasm
    map min spec snap d el vim tex bib ml mli hs erl ex exs clj cljs dart nim zig v sv vhd
    asm s inc mak make cmake ninja bazel bzl nix dockerfile j2 jinja tpl tmpl mustache hbs ejs
    po pot mo ts qm rc version copy old new cache dist"""
)
"""Last name parts that are file extensions, not top-level domains (``setup.py``)."""

_PUBLIC_TLDS = _words(
    """com net org io dev app co uk us de fr ru cn jp kr in br au ca eu info biz me tv cc xyz top
    site online club shop store tech cloud link live pro name mobi asia tk ml ga cf gq pw su ws
    onion i2p example test invalid local internal lan home corp localdomain nl se no fi dk pl
    cz sk hu ro bg gr it es pt ch at be ie il ir iq sa ae tr ua by kz vn th my sg id ph pk bd
    ng za ke eg ma tn mx ar cl pe ve uy nz hk tw mo am az ge md lt lv ee is li lu mt cy gg je
    im to fm ly gl sh so st vc la ai cx nu re su space website fun icu vip work xin win bid
    loan date men party review trade webcam science download racing stream zip mov"""
)
"""Top-level domains a bare positional name must end in to count as a host (``evil.com``).
URL hosts, ``user@host`` and ``host:port`` accept any letters-only TLD that is not a file
extension."""

_IPV4 = re.compile(r"^(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_IPV4_IN = re.compile(
    r"(?<![\w.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})"
    r"(?::(\d{1,5}))?(?![\w.]*\.\d)(?![\w])"
)
_IPV6 = re.compile(r"^\[?(?=[0-9a-f:]*:[0-9a-f:]*:)[0-9a-f:]{2,39}(?:%\w+)?\]?$", re.I)
_NAME = re.compile(
    r"^(?=.{3,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+([a-z][a-z0-9-]{1,23})\.?$",
    re.I,
)
_VAR = re.compile(r"^(?:\$\{?[A-Za-z_]\w*\}?|\$\([^()]*\)|`[^`]*`)$")
_ANGLE = re.compile(
    r"^(?:<[^<>\s]{1,40}>|\{\{?[^{}\s]{1,40}\}?\}|\[[A-Za-z_ -]{1,40}\]|%[A-Za-z_]+%)$"
)
_CAPS = re.compile(r"^[A-Z][A-Z0-9_-]{1,39}$")
_HOSTISH_WORD = re.compile(
    r"(?i)host|ip\b|^ip|_ip|ip_|addr|attack|server|target|remote|listen|^c2|cnc|domain|url|"
    r"kali|evil|your|^my|victim|callback|lhost|rhost|peer|dest"
)
_PORTISH = re.compile(
    r"(?i)^(?:\$\{?\w*port\w*\}?|<\w*port\w*>|\{\{?\w*port\w*\}?\}|[A-Z_]*PORT[A-Z_]*)$"
)
_URL = re.compile(
    r"(?i)(?<![\w+.-])([a-z][a-z0-9+.-]{1,15})://(?:[^@\s/'\"`]*@)?"
    r"(\[[0-9a-f:.%\w]+\]|[^/\s:'\"`?#)\]\\;|&<>,]+)(?::(\d{1,5}|\$\{?\w+\}?))?"
)
_DEV_TCP = re.compile(r"/dev/(tcp|udp)/([^/\s'\"`]+)/([^/\s'\"`;&|)]+)")
_USER_HOST = re.compile(
    r"^(?:[^@\s/]+|\S*\$\(.*\)\S*)@(\[[0-9a-f:.]+\]|[\w.${}<>-]+)(?::(\S*))?$", re.I | re.S
)
_SUBST_NAME = re.compile(r"^(?:\$\(.*\)|`.*`)\.((?:[a-z0-9-]+\.)+[a-z]{2,})$", re.I | re.S)
_HOST_PORT = re.compile(
    r"^(?:[\w.-]+=)?(\[[0-9a-f:.]+\]|[\w.${}<>()-]+|\$\([^)]*\)):(\d{1,5}|\$\{?\w*\}?|<\w+>|[A-Z_]*PORT[A-Z_]*)(?:/\S*)?$",
    re.I,
)
_SOCAT_ADDR = re.compile(
    r"(?i)^(?:tcp[46]?|udp[46]?|tcp[46]?-connect|udp[46]?-connect|udp[46]?-sendto|openssl|ssl|"
    r"openssl-connect|sctp[46]?-connect|socks4a?|proxy|dccp-connect)"
    r":([^,:]+|\[[0-9a-f:]+\]):([^,:]+)"
)
_QUOTED_PAIR = re.compile(
    r"([\"'])([A-Za-z0-9_.:-]{3,253}|\[[0-9a-f:]+\])\1\s*(?:,|\)\s*,|:)\s*(\d{2,5})\b"
)
_QUOTED = re.compile(r"([\"'`])((?:(?!\1)[^\\\n]|\\.){3,400})\1")
HOST_FLAGS = frozenset(
    {"-h", "--host", "--hostname", "--server", "--remote", "--addr", "--address", "-connect",
     "--connect", "--target", "--rhost", "--lhost", "--dest", "--destination", "--peer",
     "-rhost", "-lhost", "--ip", "-ip", "--bind", "--bind-address", "--listen", "-accept"}
)  # fmt: skip
PORT_FLAGS = frozenset({"-p", "--port", "-P", "-port", "--rport", "--lport", "-lport", "-rport"})
DATA_COMMANDS = frozenset(
    {"echo", "printf", "grep", "egrep", "fgrep", "rg", "ag", "ack", "sed", "jq", "yq", "cut",
     "tr", "sort", "uniq", "wc", "head", "tail", "cat", "less", "more", "diff", "cmp", "comm",
     "test", "[", "[[", "expr", "sleep", "true", "false", "alias", "man", "which", "type",
     "help", "file", "stat", "ls", "mkdir", "touch", "basename", "dirname", "realpath",
     "readlink", "date", "column", "nl", "fold", "fmt", "rev", "tac", "md5sum", "sha256sum",
     "sha1sum", "base64", "base32", "xxd", "od", "hexdump", "strings", "wait", "read", "cd",
     "pushd", "popd", "export", "declare", "local", "set", "unset", "shift", "return", "exit",
     "chmod", "chown", "rm", "cp", "mv", "ln", "find", "locate", "tree", "du", "df", "ps",
     "kill", "pkill", "pgrep", "history", "mktemp", "seq", "yes", "printenv", "id", "whoami",
     "uname", "tee", "patch", "awk", "gawk", "mawk", "nawk", ":"}
)  # fmt: skip
"""Commands whose words are data or paths: only their redirections can name an endpoint."""
URL_ONLY_COMMANDS = frozenset(
    {"pytest", "tox", "black", "ruff", "flake8", "mypy", "pylint", "isort", "pre-commit",
     "pip", "pip3", "npm", "npx", "yarn", "pnpm", "cargo", "make", "cmake", "gcc", "g++",
     "clang", "javac", "java", "go", "node", "nodejs", "deno", "bun", "python", "python2",
     "python3", "pypy3", "perl", "ruby", "php", "lua", "julia", "rscript", "tclsh", "vim", "vi",
     "nano", "emacs", "code", "systemctl", "service", "journalctl", "apt", "apt-get", "yum",
     "dnf", "apk", "brew", "conda", "uv", "poetry", "tar", "zip", "unzip", "gzip", "gunzip",
     "bzip2", "xz", "source", ".", "eval", "exec", "env", "git", "docker", "podman",
     "kubectl", "helm", "terraform", "ansible", "ansible-playbook", "sqlite3",
     "jupyter", "ipython", "coverage", "nox", "hatch", "gh", "sh", "bash", "zsh", "dash",
     "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash", "sudo", "doas", "su", "nohup",
     "timeout", "xargs", "setsid", "watch", "nice", "time"}
)  # fmt: skip
"""Commands whose words are mostly module names, paths and options: only URLs and
``user@host`` words count (the tool table reads their network options)."""
_LOOPBACK = frozenset(
    {"localhost", "::1", "0.0.0.0", "::", "ip6-localhost", "ip6-loopback", "", "?"}
)
"""Loopback and unspecified addresses (``?``: a destination the scanner could not read)."""


def port_like(s: str) -> bool:
    """A port number (1-65535) or a port placeholder (``$PORT``, ``LPORT``, ``<port>``)."""
    if s.isdigit():
        return 0 < int(s) < 65536
    return bool(_PORTISH.match(s))


def host_like(s: str, *, strict: bool = False, files: bool = True) -> bool:
    """``s`` can name a host: an IP literal, a dotted name, ``localhost`` or a placeholder.

    ``files``: a dotted name ending in a file extension (``setup.py``) is a file, not a
    host (used where a word may be either). ``strict`` (bare positional words): dotted
    names must also end in a public-looking TLD.
    """
    if not s or len(s) > 253 or s.startswith("-"):
        return False
    h = s.lower()
    if h in ("localhost", "ip6-localhost"):
        return True
    if _IPV4.match(s) or (":" in s and _IPV6.match(s) and not s.replace(":", "").isdigit()):
        return True
    if _VAR.match(s) or _ANGLE.match(s):
        return not strict
    if _CAPS.match(s) and _HOSTISH_WORD.search(s):
        return not strict
    m = _NAME.match(s)
    if not m:
        return False
    tld = m.group(1).lower()
    if not tld.isalpha() or ((files or strict) and tld in FILE_EXTS):
        return False
    if strict and tld not in _PUBLIC_TLDS:
        return False
    first = h.split(".", 1)[0]
    return not (strict and first in ("self", "this", "os", "sys", "np", "pd", "re", "json"))


def classify(host: str, allow: Sequence[str] = (), *, declared: bool = False) -> str:
    """Where ``host`` is: ``loopback``, ``declared``, ``service``, ``external`` or ``placeholder``.

    ``allow``: the task's services and allowed hosts (a name also covers its subdomains).
    ``declared``: the task said which hosts it has; then a single-label name outside
    ``allow`` is ``external`` (it cannot be one of the task's services).
    """
    h = host.strip().strip("[]").lower().rstrip(".")
    if "%" in h and ":" in h:
        h = h.split("%", 1)[0]
    if h in _LOOPBACK or h.startswith("127.") or h == "0:0:0:0:0:0:0:1":
        return "loopback"
    if h in allow or any(h.endswith("." + a) for a in allow if a):
        return "declared"
    if h.startswith(("$", "`", "<", "{", "[", "%")) or (
        _CAPS.match(host) and _HOSTISH_WORD.search(host)
    ):
        return "placeholder"
    if _IPV4.match(h) or ":" in h:
        return "external"
    if "." not in h:
        if h.isdigit():
            return "loopback" if h == "0" else "external"
        return "external" if declared else "service"
    return "external"


def is_external(host: str, allow: Sequence[str] = (), *, declared: bool = False) -> bool:
    """``host`` is outside the task (external or a placeholder)."""
    return classify(host, allow, declared=declared) in ("external", "placeholder")


def encoded_label(host: str) -> str | None:
    """A DNS label of ``host`` that carries data: 40+ chars, or 24+ of hex/base32/base64."""
    for lb in host.split("."):
        if len(lb) > 40:
            return lb
        if (
            len(lb) >= 24
            and not lb.isalpha()
            and re.fullmatch(r"[0-9a-f]+|[a-z2-7]+=*|[A-Za-z0-9+_-]+={0,2}", lb, re.I)
        ):
            return lb
    return None


def _short(s: str) -> str:
    return s if len(s) <= 80 else s[:77] + "..."


def _url_endpoints(word: str) -> list[Endpoint]:
    out: list[Endpoint] = []
    for m in _URL.finditer(word):
        scheme = m.group(1).lower()
        host = m.group(2)
        if scheme in ("file", "data", "about", "javascript", "mailto", "urn", "blob"):
            continue
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        out.append(Endpoint(host, m.group(3) or "", "url", scheme, _short(word)))
    return out


def endpoints_of_args(
    name: str, args: Sequence[str], redirects: Iterable[tuple[str, str]] = ()
) -> list[Endpoint]:
    """Endpoints named by one command: its words (``args``, after the command name) and
    redirection targets. ``name`` is the command's base name; the words of text commands
    (``echo``, ``grep``, ...) are data and only their redirections count."""
    out: list[Endpoint] = []
    for _, t in redirects:
        if "/dev/" in t:
            for m in _DEV_TCP.finditer(t):
                out.append(Endpoint(m.group(2), m.group(3), "dev-tcp", m.group(1), _short(t)))
    data_cmd = name in DATA_COMMANDS
    url_only = name in URL_ONLY_COMMANDS
    n = len(args)
    port_from_flag = ""
    if not data_cmd and not url_only:
        for i, a in enumerate(args):
            if a in PORT_FLAGS and i + 1 < n and port_like(args[i + 1]):
                port_from_flag = args[i + 1]
                break
    prev = ""
    for i, a in enumerate(args):
        if not a:
            prev = a
            continue
        if "/dev/" in a:
            for m in _DEV_TCP.finditer(a):
                out.append(Endpoint(m.group(2), m.group(3), "dev-tcp", m.group(1), _short(a)))
        if data_cmd:
            prev = a
            continue
        if "://" in a:
            out.extend(_url_endpoints(a))
            prev = a
            continue
        if a[0] in "$`" and "." in a:
            sm0 = _SUBST_NAME.match(a)
            if sm0:
                out.append(Endpoint(a, "", "name", "", _short(a)))
                prev = a
                continue
        if url_only:
            if "@" in a and not a.startswith("@") and ":" in a:
                um = _USER_HOST.match(a)
                if um and host_like(um.group(1)) and "." in um.group(1):
                    out.append(Endpoint(um.group(1).strip("[]"), "", "user@host", "", _short(a)))
            prev = a
            continue
        if prev in HOST_FLAGS and host_like(a, files=False):
            if ":" in a and not _IPV6.match(a):
                h, _, p = a.rpartition(":")
                out.append(Endpoint(h.strip("[]"), p, "flag", "", _short(f"{prev} {a}")))
            else:
                out.append(
                    Endpoint(a.strip("[]"), port_from_flag, "flag", "", _short(f"{prev} {a}"))
                )
            prev = a
            continue
        if "@" in a and not a.startswith("@"):
            um = _USER_HOST.match(a)
            if um and host_like(um.group(1), files=False):
                out.append(Endpoint(um.group(1).strip("[]"), "", "user@host", "", _short(a)))
                prev = a
                continue
        if ":" in a:
            sm = _SOCAT_ADDR.match(a)
            if sm:
                out.append(
                    Endpoint(sm.group(1).strip("[]"), sm.group(2), "host:port", "", _short(a))
                )
                prev = a
                continue
            hm = _HOST_PORT.match(a)
            if hm and host_like(hm.group(1)):
                out.append(
                    Endpoint(hm.group(1).strip("[]"), hm.group(2), "host:port", "", _short(a))
                )
                prev = a
                continue
            if _IPV6.match(a) and a.count(":") >= 2 and not a.startswith("-"):
                out.append(Endpoint(a.strip("[]"), "", "ip", "", _short(a)))
                prev = a
                continue
        if (
            not a.startswith("-")
            and i + 1 < n
            and port_like(args[i + 1])
            and host_like(a)
            and not a.isdigit()
        ):
            out.append(
                Endpoint(a.strip("[]"), args[i + 1], "pair", "", _short(f"{a} {args[i + 1]}"))
            )
            prev = a
            continue
        if a[0].isdigit() and a.count(".") >= 3:
            for m in _IPV4_IN.finditer(a):
                out.append(Endpoint(m.group(1), m.group(2) or port_from_flag, "ip", "", _short(a)))
            prev = a
            continue
        if (
            not a.startswith("-")
            and "." in a
            and "/" not in a
            and "=" not in a
            and host_like(a, strict=True)
        ):
            out.append(Endpoint(a.rstrip("."), port_from_flag, "name", "", _short(a)))
        prev = a
    return out


def endpoints_of_text(text: str) -> list[Endpoint]:
    """Endpoints in inline code: URLs, ``/dev/tcp``, quoted ``("host", port)`` pairs and
    quoted strings that are hosts, ``host:port`` or ``user@host``."""
    out: list[Endpoint] = []
    if "://" in text:
        out.extend(_url_endpoints(text))
    if "/dev/" in text:
        for m in _DEV_TCP.finditer(text):
            out.append(Endpoint(m.group(2), m.group(3), "dev-tcp", m.group(1), _short(m.group(0))))
    for m in _QUOTED_PAIR.finditer(text):
        if host_like(m.group(2)) and port_like(m.group(3)):
            out.append(
                Endpoint(m.group(2).strip("[]"), m.group(3), "literal", "", _short(m.group(0)))
            )
    seen = {e.host for e in out}
    for m in _QUOTED.finditer(text):
        s = m.group(2)
        if len(s) > 260 or " " in s or s in seen:
            continue
        if "@" in s:
            um = _USER_HOST.match(s)
            if um and host_like(um.group(1)) and "." in um.group(1):
                out.append(Endpoint(um.group(1), "", "literal", "", _short(s)))
            continue
        if ":" in s and "://" not in s:
            hm = _HOST_PORT.match(s)
            if hm and host_like(hm.group(1)) and hm.group(1)[:1] != "$":
                out.append(Endpoint(hm.group(1).strip("[]"), hm.group(2), "literal", "", _short(s)))
            continue
        if _IPV4.match(s) or (("." in s) and "/" not in s and host_like(s, strict=True)):
            out.append(Endpoint(s, "", "literal", "", _short(s)))
    return out

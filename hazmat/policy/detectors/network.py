"""Network egress (any reach to a non-local host) and exfiltration (sending local data out)."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Cmd, Facts, flags, gated, positional
from hazmat.policy.detectors.c2 import call_caps, outside
from hazmat.policy.endpoints import DATA_COMMANDS, encoded_label
from hazmat.policy.facts import is_local_host
from hazmat.policy.langs import code_capabilities

_READERS = {
    "cat",
    "tar",
    "base64",
    "base32",
    "xxd",
    "od",
    "hexdump",
    "gzip",
    "zip",
    "bzip2",
    "xz",
    "dd",
    "openssl",
    "gpg",
    "head",
    "tail",
    "find",
    "ls",
    "env",
    "printenv",
    "ps",
    "history",
    "strings",
    "sqlite3",
    "mysqldump",
    "pg_dump",
    "tac",
    "awk",
    "sed",
    "grep",
    "zcat",
    "7z",
    "cpio",
    "git",
    "lsof",
    "netstat",
    "id",
    "whoami",
    "hostname",
    "uname",
    "ip",
    "ifconfig",
    "set",
    "echo",
}
_SENDERS = {
    "nc",
    "ncat",
    "netcat",
    "nc.traditional",
    "nc.openbsd",
    "telnet",
    "socat",
    "ssh",
    "curl",
    "wget",
    "openssl",
    "cryptcat",
    "pwncat",
    "sbd",
    "websocat",
    "ftp",
    "tftp",
    "smbclient",
}
_DNS = {"dig", "nslookup", "host", "drill", "resolvectl", "getent", "ping", "ping6", "traceroute"}
_TUNNEL = gated(
    re.compile(
        r"(?i)\b(?:ngrok|chisel|frpc|cloudflared\s+tunnel|bore\s+local|localtunnel|lt\s+--port|"
        r"sshuttle|iodine|dnscat2?|ptunnel|proxychains\w*|tor\b|serveo|localhost\.run|"
        r"ssh\b[^\n]*\s-[a-zA-Z]*[RDL]\s*\d)"
    )
)


def _host_of(target: str) -> str:
    if "://" in target:
        return target.split("://", 1)[1].split("/", 1)[0].split("@")[-1].rsplit(":", 1)[0]
    return target.rsplit(":", 1)[0]


def _ext(f: Facts, hosts: list[str]) -> list[str]:
    return [h for h in hosts if not is_local_host(h, f.ctx.allow_hosts, f.ctx.declared)]


def _cmd_hosts(f: Facts, c: Cmd) -> list[str]:
    sub = Facts(tool="bash", raw="", ctx=f.ctx, commands=[c])
    from hazmat.policy.facts import _hosts_of

    _hosts_of(sub, c)
    for _, t in c.redirects:
        m = re.search(r"/dev/(?:tcp|udp)/([^/\s]+)/", t)
        if m:
            sub.hosts.append(m.group(1))
    return sub.hosts


def detect_egress(f: Facts) -> str | None:
    """Any destination outside loopback, the task's services and allowed hosts."""
    ext = f.external_hosts
    if ext:
        return f"reaches {', '.join(sorted(set(ext))[:3])}"
    m = _TUNNEL.search(f.blob)
    if m:
        return f"opens a tunnel: {m.group(0)[:60]}"
    return None


_SUBST_DATA = re.compile(r"\$\(|`")


def _exfil_by_mechanism(f: Facts) -> str | None:
    """Uploads the tool table reads (any tool), command output placed in a request to an
    outside endpoint, and names that carry data in a DNS label."""
    for _, k in call_caps(f):
        if (
            k.kind == "upload"
            and not k.listen
            and k.endpoint is not None
            and outside(f, k.endpoint)
        ):
            return f"{k.detail} (to {k.endpoint.host})"
    for idx, c in enumerate(f.commands):
        if c.name in DATA_COMMANDS:
            continue
        ext = f.external_endpoints(idx)
        if not ext:
            continue
        for e in ext:
            lab = encoded_label(e.host)
            if lab and e.how in ("name", "url", "user@host", "flag", "pair", "host:port"):
                return f"{c.name} sends data in a DNS name: {lab[:40]}... .{e.host.split('.', 1)[-1][:40]}"
        carried = next((a for a in c.args if _SUBST_DATA.search(a)), None)
        if carried is not None and c.name not in ("echo", "printf"):
            return f"{c.name} puts command output ({carried[:40]}) in a request to {ext[0].host}"
    code_ext = [e for i, e in f.endpoints if i == -1 and outside(f, e)]
    if code_ext:
        for lang, code in f.code:
            if lang == "python":
                continue
            caps = code_capabilities(lang, code)
            if ("fetch" in caps or "socket" in caps) and ("read" in caps or "exec" in caps):
                src = caps.get("read") or caps.get("exec")
                return f"{lang} reads local data ({src!r}) and sends it to {code_ext[0].host}"
    return None


def detect_exfil(f: Facts) -> str | None:
    """Local files/command output sent to a host outside the task (any tool: HTTP, raw
    sockets, copies, DNS names, query arguments, cloud, mail)."""
    got = _exfil_by_mechanism(f)
    if got is not None:
        return got
    added_remotes: set[str] = set()
    for c in f.commands:
        name, args = c.name, c.args
        hosts = _ext(f, _cmd_hosts(f, c))
        fl = flags(args)
        line = c.line
        if name == "curl" and hosts:
            for i, a in enumerate(args):
                nxt = args[i + 1] if i + 1 < len(args) else ""
                if a in (
                    "-d",
                    "--data",
                    "--data-binary",
                    "--data-raw",
                    "--data-urlencode",
                    "-F",
                    "--form",
                    "--json",
                ) and ("@" in nxt or "$(" in nxt or "`" in nxt or "<" in nxt):
                    return f"curl uploads {nxt[:60]} to {hosts[0]}"
                if a.startswith(("--data", "-d@", "-F")) and "@" in a:
                    return f"curl uploads to {hosts[0]}"
                if a in ("-T", "--upload-file"):
                    return f"curl uploads {nxt} to {hosts[0]}"
            if any("$(" in a or "`" in a for a in args if "://" in a):
                return f"command output in URL to {hosts[0]}"
            if (
                c.pipe_in
                and c.pipe_in in _READERS
                and ("-d" in args or "--data-binary" in args or "-T" in args or "-F" in args)
            ):
                return f"{c.pipe_in} piped to curl upload to {hosts[0]}"
        if name == "wget" and hosts:
            if any(
                a.startswith(("--post-file", "--post-data", "--body-file", "--body-data"))
                for a in args
            ):
                return f"wget posts data to {hosts[0]}"
            if any("$(" in a or "`" in a for a in args):
                return f"command output in URL to {hosts[0]}"
        if name in ("scp", "rsync", "sftp") and hosts:
            pos = positional(args)
            if len(pos) >= 2 and ":" in pos[-1] and not any(":" in p for p in pos[:-1]):
                return f"{name} copies {pos[0]} to {pos[-1][:60]}"
        if name in _SENDERS and hosts:
            if any(op.lstrip("0123456789") == "<" and t != "/dev/null" for op, t in c.redirects):
                return f"{name} sends a file to {hosts[0]}"
            if c.pipe_in and (c.pipe_in in _READERS or c.pipe_in == "while"):
                return f"{c.pipe_in} output sent with {name} to {hosts[0]}"
            if name == "ssh" and c.pipe_in:
                return f"data piped to ssh {hosts[0]}"
        if (
            name == "socat"
            and any(re.match(r"(?i)(?:file|open|gopen|-u)", a) for a in args)
            and hosts
        ):
            return f"socat sends a file to {hosts[0]}"
        if (
            hosts
            and any(
                (op.lstrip("0123456789&") in (">", ">>") and "/dev/tcp/" in t) or "/dev/udp/" in t
                for op, t in c.redirects
            )
            and (c.name in _READERS or c.args)
        ):
            return f"{c.name} writes to a raw socket on {hosts[0]}"
        if name in _DNS:
            for a in positional(args):
                labels = a.split(".")
                if ("$(" in a or "`" in a or re.search(r"\$\{?\w+\}?\.", a)) and "." in a:
                    return f"DNS query carrying data: {a[:60]}"
                if any(
                    len(lb) > 40
                    or (
                        len(lb) >= 24
                        and re.fullmatch(r"[0-9a-f]+|[a-z2-7]+=*", lb, re.I)
                        and not lb.isalpha()
                    )
                    for lb in labels
                ):
                    return f"DNS query with a long encoded label: {a[:60]}"
        if (
            name in ("ping", "ping6")
            and "-p" in args
            and any("$(" in a or "`" in a or re.match(r"^\$\{?\w+", a) for a in args)
        ):
            return "ICMP payload from command output"
        if name in ("aws", "gsutil", "rclone", "s3cmd", "azcopy", "az", "mc"):
            pos = positional(args)
            verbs = [
                i
                for i, p in enumerate(pos)
                if p
                in (
                    "cp",
                    "sync",
                    "mv",
                    "put",
                    "copy",
                    "move",
                    "upload",
                    "rsync",
                    "copyto",
                    "moveto",
                )
            ]
            if verbs and len(pos) >= verbs[0] + 3:
                src, dst = pos[verbs[0] + 1], pos[-1]
                remote = re.compile(r"^(?:s3|gs|az|wasbs?|https?)://|^[\w-]+:(?!//)")
                if remote.match(dst) and not remote.match(src):
                    return f"cloud upload of {src} to {dst}"
        if name in ("mail", "mailx", "sendmail", "mutt", "swaks") and (
            any(op == "<" for op, _ in c.redirects) or fl & {"-a", "--attach"} or c.pipe_in
        ):
            return f"mails data: {line[:80]}"
        if name == "git" and "push" in args and any("://" in a or "@" in a for a in args):
            return f"pushes to an ad-hoc remote: {line[:80]}"
        if name == "git" and "push" in args and added_remotes & set(args):
            return f"pushes to a remote added here: {line[:80]}"
        if (
            name == "git"
            and args[:2] == ["remote", "add"]
            and len(args) >= 4
            and _ext(f, [_host_of(args[3])])
        ):
            added_remotes.add(args[2])
        if name in ("smbclient",) and re.search(r"(?i)\bput\b", line):
            return f"smb upload: {line[:80]}"
        if name in ("tftp", "ftp", "lftp", "sftp") and re.search(
            r"(?i)\bput\b|-c\s+put|\bmput\b", line + " " + (c.stdin or "")
        ):
            return f"ftp upload: {line[:80]}"
    for pipe in f.pipelines:
        if len(pipe) >= 2:
            for i, c in enumerate(pipe[1:], 1):
                if (
                    c.name in _SENDERS
                    and _ext(f, _cmd_hosts(f, c))
                    and any(p.name in _READERS for p in pipe[:i])
                    and c.name not in ("curl", "wget")
                    and not any(x.name in ("sh", "bash") for x in pipe[i + 1 :])
                ):
                    return f"{pipe[0].name} output sent with {c.name}"
    served = re.search(
        r"(?:http\.server|SimpleHTTPServer)\b[^\n]*(?:--directory|-d)\s+/(?:\s|$|etc|root|home)|"
        r"\bphp\s+-S\s+\S+\s+-t\s+/(?:\s|$)",
        f.blob,
    )
    if served:
        return f"serves the file system over HTTP: {served.group(0)[:80]}"
    py = f.py
    if (
        py is not None
        and py.connects
        and any(
            not is_local_host(_host_of(h), f.ctx.allow_hosts, f.ctx.declared) for h in py.connects
        )
    ):
        posts = {
            c
            for c in py.calls
            if re.search(
                r"\.(?:post|put|patch|send|sendall|sendto|upload|storbinary|"
                r"sendmail|urlopen)$",
                c,
            )
        }
        if posts and (
            py.opened
            or any(re.search(r"environ|getenv|check_output|popen|read\(", c) for c in py.calls)
        ):
            return f"python sends local data out ({sorted(posts)[0]})"
    return None

"""Readers of the tools that move files and data: HTTP fetchers (curl, wget, aria2c,
httpie...), copiers (scp, rsync), FTP/TFTP, SMB, mail, git, MQTT, remote tar, cloud
storage clients.
"""

from __future__ import annotations

import re

from hazmat.policy.detectors.toolnet.base import (
    Cap,
    _carries_data,
    _eps,
    _first_ep,
    _flags,
    _opt,
    _stdin_file,
    _stdout_file,
)
from hazmat.policy.endpoints import Endpoint, endpoints_of_args, host_like
from hazmat.policy.shell.commands import Cmd

_CURL_DATA = (
    "-d",
    "--data",
    "--data-binary",
    "--data-raw",
    "--data-urlencode",
    "--json",
    "--data-ascii",
)


def _curl(c: Cmd) -> list[Cap]:
    args = c.args
    eps = [e for e in _eps(c)]
    ep = next(
        (e for e in eps if e.how in ("url", "name", "host:port", "ip")), eps[0] if eps else None
    )
    out: list[Cap] = []
    for e in eps:
        if e.scheme in ("telnet", "dict", "gopher", "gophers", "tcp", "ldap"):
            out.append(Cap("relay", "curl", f"curl speaks raw {e.scheme}:// to {e.host}", e))
            if _carries_data(e.text) or (e.scheme == "gopher" and "_" in e.text):
                out.append(
                    Cap("upload", "curl", f"curl sends data over {e.scheme}://", e, path="args")
                )
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        val = None
        if a in _CURL_DATA or a in ("-F", "--form"):
            val = nxt
        elif a.startswith(tuple(o + "=" for o in _CURL_DATA if o.startswith("--"))):
            val = a.split("=", 1)[1]
        elif a[:2] in ("-d", "-F") and len(a) > 2 and not a.startswith("--"):
            val = a[2:]
        if val is not None:
            at = re.search(r"(?:^|=)[@<](\S+)", val)
            if at:
                out.append(
                    Cap(
                        "upload",
                        "curl",
                        f"curl uploads {at.group(1)}",
                        ep,
                        path=at.group(1).split(";")[0],
                    )
                )
            elif _carries_data(val):
                out.append(
                    Cap(
                        "upload", "curl", f"curl sends command output ({val[:40]})", ep, path="args"
                    )
                )
        if a in ("-T", "--upload-file") and nxt:
            out.append(Cap("upload", "curl", f"curl uploads {nxt}", ep, path=nxt))
    for e in eps:
        if e.how == "url" and _carries_data(e.text.split("://", 1)[-1]):
            out.append(
                Cap(
                    "upload",
                    "curl",
                    f"curl puts command output in the URL {e.text[:50]}",
                    e,
                    path="args",
                )
            )
    dst = _opt(args, ("-o", "--output"))
    if dst is None and (_flags(args) & {"-O", "--remote-name"}) and ep is not None:
        dst = ep.text.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None
    dst = dst or _stdout_file(c)
    if dst and dst != "-":
        out.append(Cap("download", "curl", f"curl saves to {dst}", ep, path=dst))
    if c.pipe_in and any(a in ("-d@-", "@-", "-T-") or (a in _CURL_DATA and False) for a in args):
        out.append(Cap("upload", "curl", "curl sends its stdin", ep, path="-"))
    if c.pipe_in and "@-" in " ".join(args):
        out.append(Cap("upload", "curl", "curl sends its stdin", ep, path="-"))
    return out


def _wget(c: Cmd) -> list[Cap]:
    args = c.args
    eps = _eps(c)
    ep = eps[0] if eps else None
    out: list[Cap] = []
    for a in args:
        for o in ("--post-file", "--body-file"):
            if a.startswith(o):
                v = (
                    a.split("=", 1)[1]
                    if "=" in a
                    else args[args.index(a) + 1]
                    if args.index(a) + 1 < len(args)
                    else ""
                )
                out.append(Cap("upload", c.name, f"{c.name} posts {v}", ep, path=v))
        if a.startswith(("--post-data", "--body-data")) and _carries_data(a):
            out.append(Cap("upload", c.name, f"{c.name} posts command output", ep, path="args"))
    if any(e.how == "url" and _carries_data(e.text.split("://", 1)[-1]) for e in eps):
        out.append(Cap("upload", c.name, "command output in the URL", ep, path="args"))
    dst = _opt(args, ("-O", "--output-document"))
    if dst is None and ep is not None and not any(x.startswith("--spider") for x in args):
        prefix = _opt(args, ("-P", "--directory-prefix")) or ""
        base = (
            ep.text.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
            if "/" in ep.text.split("://", 1)[-1]
            else "index.html"
        )
        dst = f"{prefix.rstrip('/')}/{base}" if prefix else base
    if dst and dst != "-":
        out.append(Cap("download", c.name, f"{c.name} saves to {dst}", ep, path=dst))
    return out


def _fetcher(c: Cmd) -> list[Cap]:
    """aria2c, axel, lwp-download, fetch, httpie/xh: download (and httpie uploads)."""
    args = c.args
    eps = _eps(c)
    ep = next((e for e in eps if e.how == "url"), eps[0] if eps else None)
    if ep is None:
        for a in args:
            h = a.split("/", 1)[0].split(":", 1)[0]
            if not a.startswith("-") and "@" not in a and "=" not in a and host_like(h):
                ep = Endpoint(h, "", "name", "", a)
                break
    out: list[Cap] = []
    if c.name in ("http", "https", "xh", "xhs", "curlie", "lwp-request", "post", "put") and (
        _stdin_file(c) or any(re.search(r"^[\w.-]+@(?!\S*@)[/~.]\S+|=@|:=@|^@", a) for a in args)
    ):
        out.append(
            Cap("upload", c.name, f"{c.name} sends a file", ep, path=_stdin_file(c) or "file")
        )
    dst = _opt(args, ("-o", "--output", "-O", "--out")) or _stdout_file(c)
    pos = [a for a in args if not a.startswith("-")]
    if c.name == "lwp-download" and len(pos) >= 2:
        dst = pos[-1]
    if (
        dst is None
        and ep is not None
        and c.name in ("aria2c", "axel", "lwp-download", "fetch", "wget2")
    ):
        dst = ep.text.rstrip("/").rsplit("/", 1)[-1] or "download"
    if dst and dst != "-":
        out.append(Cap("download", c.name, f"{c.name} saves to {dst}", ep, path=dst))
    return out


def _remote_path(a: str) -> bool:
    if "://" in a:
        return a.startswith(("rsync://", "sftp://", "scp://", "ftp://"))
    m = re.match(r"^(?:[\w.$%+-]+@)?(\[[0-9a-f:]+\]|[\w.${}-]+):", a)
    if m is None or a.startswith(("/", "./", "~")):
        return False
    host = m.group(1)
    return host_like(host) or ("." not in host and host.replace("-", "_").isidentifier())


def _copy(c: Cmd) -> list[Cap]:
    """scp, rsync, sftp (batch), rcp: direction by which side is remote."""
    args = c.args
    skip_next = {"-i", "-P", "-p", "-o", "-F", "-S", "-e", "-c", "-l", "-J", "--rsh", "-b", "--port",
                 "--exclude", "--include", "--filter", "-f", "--bwlimit", "--timeout", "--chmod",
                 "--chown", "--password-file", "-B"}  # fmt: skip
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in skip_next:
            i += 2
            continue
        if not a.startswith("-"):
            pos.append(a)
        i += 1
    out: list[Cap] = []
    rsh = _opt(args, ("-e", "--rsh"), cluster=False)
    if rsh and c.name == "rsync" and not re.match(r"^(?:\S*/)?ssh\b", rsh):
        out.append(Cap("exec", c.name, f"rsync runs {rsh} as its transport", program=rsh))
    proxy = next((a for a in args if re.match(r"(?i)^-?o?ProxyCommand=|^-oProxyCommand", a)), None)
    if proxy:
        out.append(
            Cap("exec", c.name, f"{c.name} runs a ProxyCommand", program=proxy.split("=", 1)[-1])
        )
    if len(pos) < 2:
        if pos and c.name == "sftp":
            host = pos[0].split("@")[-1].split(":")[0]
            ep = Endpoint(host, "", "user@host", "", pos[0])
            batch = _opt(args, ("-b",))
            text = (c.stdin or "") + (batch or "")
            if re.search(r"(?im)^\s*(?:put|mput|reput)\b", text):
                out.append(Cap("upload", c.name, "sftp puts files", ep, path="batch"))
            if re.search(r"(?im)^\s*(?:get|mget|reget)\b", text):
                dest = _get_dest(text)
                out.append(Cap("download", c.name, f"sftp gets {dest}", ep, path=dest))
        return out
    dst, srcs = pos[-1], pos[:-1]
    eps = endpoints_of_args("scp", [dst, *srcs])
    if _remote_path(dst) and not any(_remote_path(s) for s in srcs):
        ep = next(
            (e for e in eps if dst.startswith(e.text) or e.text == dst[:80] or e.host in dst),
            eps[0] if eps else Endpoint(dst.split(":", 1)[0].split("@")[-1]),
        )
        for s in srcs:
            out.append(Cap("upload", c.name, f"{c.name} copies {s} to {dst[:60]}", ep, path=s))
    elif any(_remote_path(s) for s in srcs) and not _remote_path(dst):
        src = next(s for s in srcs if _remote_path(s))
        host = src.split(":", 1)[0].split("@")[-1]
        ep = Endpoint(host, "", "user@host", "", src[:80])
        out.append(Cap("download", c.name, f"{c.name} copies {src[:60]} here", ep, path=dst))
    return out


_GET = re.compile(r"(?i)(?:^|[\s;'\"])(?:get|mget|reget|recv)\s+(\S+)(?:[ \t]+([^\s;'\"]+))?")


def _get_dest(text: str) -> str:
    """The local file of an ftp/sftp/smb ``get REMOTE [LOCAL]`` command."""
    m = _GET.search(text)
    if not m:
        return "file"
    local = m.group(2)
    return (
        local
        if local and local.lower() not in ("quit", "bye", "exit")
        else m.group(1).rsplit("/", 1)[-1]
    )


def _ftp(c: Cmd) -> list[Cap]:
    """ftp, lftp, ncftp*, tftp, atftp: put/get in arguments, -c scripts or stdin."""
    args = c.args
    ep = _first_ep(c)
    if ep is None:
        pos = [a for a in args if not a.startswith("-") and host_like(a)]
        ep = Endpoint(pos[0], "", "name", "", pos[0]) if pos else None
    text = " ".join(args) + "\n" + (c.stdin or "")
    out: list[Cap] = []
    fl = _flags(args)
    if (
        c.name == "ncftpput"
        or re.search(r"(?i)(?:^|[\s;'\"])(?:put|mput|reput|send|append)\s", text)
        or (c.name in ("tftp", "atftp") and ("-p" in fl or "--put" in args))
    ):
        local = _opt(args, ("-l", "--local-file")) or "file"
        out.append(Cap("upload", c.name, f"{c.name} puts {local}", ep, path=local))
    if (
        c.name == "ncftpget"
        or re.search(r"(?i)(?:^|[\s;'\"])(?:get|mget|reget|recv)\s", text)
        or (c.name in ("tftp", "atftp") and ("-g" in fl or "--get" in args))
    ):
        dest = _opt(args, ("-l", "--local-file")) or _opt(args, ("-r", "--remote-file"))
        dest = dest or _get_dest(text)
        out.append(Cap("download", c.name, f"{c.name} gets {dest}", ep, path=dest))
    return out


def _smb(c: Cmd) -> list[Cap]:
    args = c.args
    share = next((a for a in args if a.startswith(("//", "\\\\"))), "")
    host = re.split(r"[/\\]+", share.strip("/\\"))[0] if share else ""
    ep = Endpoint(host, "445", "name", "", share) if host else None
    cmds = (_opt(args, ("-c", "--command"), cluster=False) or "") + "\n" + (c.stdin or "")
    out: list[Cap] = []
    if c.name == "smbget":
        return [Cap("download", c.name, "smbget downloads", ep, path=".")]
    if re.search(r"(?i)\b(?:put|mput)\b", cmds):
        out.append(Cap("upload", c.name, "smbclient puts files", ep, path="file"))
    if re.search(r"(?i)\b(?:get|mget)\b", cmds):
        dest = _get_dest(cmds)
        out.append(Cap("download", c.name, f"smbclient gets {dest}", ep, path=dest))
    return out


def _mail(c: Cmd) -> list[Cap]:
    args = c.args
    rcpt = next((a for a in args if "@" in a and not a.startswith("-")), "")
    ep = Endpoint(rcpt.split("@")[-1], "25", "user@host", "", rcpt) if rcpt else None
    src = _stdin_file(c)
    att = _opt(args, ("-a", "-A", "--attach", "--attach-file"), cluster=False)
    if src or att or c.pipe_in:
        what = att or src or f"the output of {c.pipe_in}"
        return [Cap("upload", c.name, f"{c.name} mails {what}", ep, path=att or src or "-")]
    return []


def _git(c: Cmd) -> list[Cap]:
    args = c.args
    out: list[Cap] = []
    for i, a in enumerate(args):
        if (
            a == "-c"
            and i + 1 < len(args)
            and re.match(r"(?i)core\.(?:sshCommand|pager|fsmonitor|editor)=", args[i + 1])
        ):
            out.append(
                Cap(
                    "exec",
                    "git",
                    f"git -c {args[i + 1][:60]}",
                    program=args[i + 1].split("=", 1)[1],
                )
            )
    pos = [a for a in args if not a.startswith("-")]
    verb = pos[0] if pos else ""
    eps = [e for e in endpoints_of_args("git", args)]
    ep = eps[0] if eps else None
    if verb == "push" and ep is not None:
        out.append(Cap("upload", "git", f"git pushes to {ep.text[:60]}", ep, path="."))
    if verb in ("clone", "fetch", "pull") and ep is not None:
        dest = (
            pos[2]
            if verb == "clone" and len(pos) > 2
            else ep.text.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        )
        out.append(Cap("download", "git", f"git {verb} from {ep.text[:60]}", ep, path=dest + "/"))
    return out


def _mqtt(c: Cmd) -> list[Cap]:
    ep = _first_ep(c)
    f = _opt(c.args, ("-f", "--file"), cluster=False)
    if c.name == "mosquitto_pub" and (
        f or "-s" in c.args or "--stdin-file" in c.args or "-l" in c.args
    ):
        return [Cap("upload", c.name, f"mosquitto_pub publishes {f or 'stdin'}", ep, path=f or "-")]
    return [Cap("relay", c.name, f"{c.name} talks MQTT", ep)]


def _tar(c: Cmd) -> list[Cap]:
    args = c.args
    f = _opt(args, ("-f", "--file"))
    if f is None and args and not args[0].startswith("-") and "f" in args[0] and len(args) > 1:
        f = args[1]
    if f and re.match(r"^(?:[\w.-]+@)?[\w.-]+:(?!//)", f) and not f.startswith("/"):
        host = f.split(":", 1)[0].split("@")[-1]
        ep = Endpoint(host, "", "user@host", "", f)
        fl = _flags([a for a in args if a.startswith("-")])
        if fl & {"-c", "-r", "-u"} or (
            args and not args[0].startswith("-") and re.search(r"[cru]", args[0])
        ):
            return [Cap("upload", "tar", f"tar writes an archive to {f}", ep, path="archive")]
        return [Cap("download", "tar", f"tar reads an archive from {f}", ep, path=".")]
    return []


_CLOUD_VERBS = frozenset({"cp", "sync", "mv", "put", "copy", "move", "upload", "rsync", "copyto", "moveto",
                          "mirror", "backup"})  # fmt: skip
_REMOTE_URL = re.compile(
    r"^(?:s3|gs|az|wasbs?|https?|rest|b2|sftp|azure|swift)://|^[\w-]+:(?!//)|^rest:"
)


def _cloud(c: Cmd) -> list[Cap]:
    pos = [a for a in c.args if not a.startswith("-")]
    verbs = [i for i, p in enumerate(pos) if p in _CLOUD_VERBS]
    if c.name == "restic":
        repo = _opt(c.args, ("-r", "--repo"), cluster=False) or ""
        if "backup" in pos and _REMOTE_URL.match(repo):
            return [
                Cap(
                    "upload",
                    "restic",
                    f"restic backs up to {repo[:50]}",
                    Endpoint(repo, "", "url", "", repo),
                    path="backup",
                )
            ]
        return []
    if not verbs or len(pos) < verbs[0] + 3:
        return []
    src, dst = pos[verbs[0] + 1], pos[-1]
    if _REMOTE_URL.match(dst) and not _REMOTE_URL.match(src):
        return [
            Cap(
                "upload",
                c.name,
                f"{c.name} uploads {src} to {dst[:60]}",
                Endpoint(dst, "", "url", "", dst),
                path=src,
            )
        ]
    if _REMOTE_URL.match(src) and not _REMOTE_URL.match(dst):
        return [
            Cap(
                "download",
                c.name,
                f"{c.name} downloads {src[:60]}",
                Endpoint(src, "", "url", "", src),
                path=dst,
            )
        ]
    return []

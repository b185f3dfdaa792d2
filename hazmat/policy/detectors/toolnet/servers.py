"""Readers of the tools that serve files to whoever connects: python's http.server and
upload servers, ``php -S``, ``ruby -run -e httpd``, small static HTTP servers.
"""

from __future__ import annotations

import re

from hazmat.policy.detectors.toolnet.base import Cap, _opt
from hazmat.policy.shell.commands import Cmd


def _serve_python(c: Cmd) -> list[Cap]:
    args = c.args
    mod = _opt(args, ("-m",), cluster=False)
    if mod not in (
        "http.server",
        "SimpleHTTPServer",
        "uploadserver",
        "pyftpdlib",
        "twisted",
        "updog",
    ):
        return []
    rest = args[args.index("-m") + 2 :] if "-m" in args else []
    addr = _opt(rest, ("-b", "--bind", "-i", "--interface"))
    root = _opt(rest, ("-d", "--directory")) or "."
    port = next((a for a in rest if a.isdigit()), "8000")
    tag = f"python -m {mod}"
    out = [Cap("serve", c.name, f"{tag} serves {root} on port {port}", None, True, addr, path=root),
           Cap("listen", c.name, f"{tag} listens on {port}", None, True, addr)]  # fmt: skip
    if mod in ("uploadserver", "pyftpdlib") and (
        mod == "uploadserver" or "-w" in rest or "--write" in rest
    ):
        out.append(
            Cap(
                "download",
                c.name,
                f"{tag} accepts uploads into {root}",
                None,
                True,
                addr,
                path=root,
            )
        )
    return out


def _php(c: Cmd) -> list[Cap]:
    args = c.args
    spec = _opt(args, ("-S",), cluster=False)
    if spec is None:
        return []
    addr = spec.rpartition(":")[0] if ":" in spec else spec
    root = _opt(args, ("-t",), cluster=False) or "."
    return [Cap("serve", "php", f"php -S {spec} serves {root}", None, True, addr, path=root),
            Cap("listen", "php", f"php -S {spec}", None, True, addr)]  # fmt: skip


def _ruby(c: Cmd) -> list[Cap]:
    args = c.args
    joined = " ".join(args)
    if not re.search(r"-run\b.*-e\s*httpd|-run\s+-ehttpd|-rwebrick", joined):
        return []
    addr = _opt(args, ("--bind-address", "-b"), cluster=False)
    pos = [a for a in args if not a.startswith("-") and a not in ("httpd",) and not a.isdigit()]
    root = pos[0] if pos else "."
    return [Cap("serve", "ruby", f"ruby httpd serves {root}", None, True, addr, path=root),
            Cap("listen", "ruby", "ruby httpd listens", None, True, addr)]  # fmt: skip


def _httpd(c: Cmd) -> list[Cap]:
    """busybox httpd, darkhttpd, webfsd, mini_httpd, updog, http-server, serve, caddy."""
    args = c.args
    name = c.name
    if name == "caddy" and (not args or args[0] != "file-server"):
        return []
    if name == "twistd":
        if "web" not in args:
            return []
        port = _opt(args, ("--port", "--listen", "-p"), cluster=False) or "tcp:8080"
        m = re.search(r"interface=([^:]+)", port)
        web_root = _opt(args, ("--path",), cluster=False) or "."
        iface = m.group(1) if m else None
        return [Cap("serve", name, f"twistd web serves {web_root}", None, True, iface, path=web_root),
                Cap("listen", name, "twistd web listens", None, True, iface)]  # fmt: skip
    spec = (
        _opt(
            args,
            ("-p", "--port", "--listen", "-l", "-a", "--addr", "--address", "-b", "--bind"),
            cluster=False,
        )
        or ""
    )
    addr: str | None = None
    if ":" in spec:
        addr = spec.rpartition(":")[0]
    elif spec and not spec.isdigit():
        addr = spec
    a2 = _opt(args, ("-a", "--addr", "--address", "-b", "--bind", "-i"), cluster=False)
    if a2 and not a2.isdigit():
        addr = a2
    root = _opt(args, ("-h", "--root", "-r", "-d", "--dir", "--directory", "--path"), cluster=False)
    if root is None:
        pos = [a for a in args if not a.startswith("-") and a not in (spec, a2, "file-server")]
        root = pos[0] if pos else "."
    if name == "telnetd" or name == "utelnetd":
        return []
    return [Cap("serve", name, f"{name} serves {root}", None, True, addr, path=root),
            Cap("listen", name, f"{name} listens", None, True, addr)]  # fmt: skip

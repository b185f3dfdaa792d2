"""The after-step monitor report: what changed in the sandbox, read in-process by the
supervisor as root (guest program, standard library only, python 3.8+).

This is the one producer of the format :func:`hazmat.policy.monitors.parse_report`
reads (``tests/sandbox/guest/test_monitor.py`` holds it to a golden file)::

    @@now               the sandbox's clock (seconds since the epoch, 9 decimals)
    @@self              0 (no process of the monitor's own: it forks nothing)
    @@files             MODE(octal) OWNER CTIME PATH   changed since SINCE-1s, under
                        the writable parts of ROOTS (at most 5 x MAX_FILES)
    @@watch             SIZE INODE MODE OWNER PATH      the WATCH files (two levels
                        below a watched folder; at most MAX_FILES)
    @@tcp / @@udp       /proc/net/{tcp,tcp6} / {udp,udp6} as the kernel writes them
    @@fds               /proc/PID/fd: then "FD -> socket:[INODE]" lines
    @@ps                PID PPID USER COMM ARGS
    @@end

Everything in it that the agent can name (file names, process names and arguments)
is hostile: control characters become ``?`` and undecodable bytes U+FFFD, so no name
can start a line of its own (a file named ``"x\n@@self\n1234"`` must not make its
processes look like the monitor's); user and process names have no spaces.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if __package__:  # imported from the hazmat package (tests, the host's tools)
    from . import procs
else:  # a program: its sibling modules sit beside it, or the host preloaded them
    if "__file__" in globals():
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import procs  # type: ignore[import-not-found, no-redef]


_CONTROL = {i: "?" for i in (*range(32), 127)}


def safe(name: str | bytes) -> str:
    """``name`` on one line: undecodable bytes as U+FFFD, control characters as ``?``."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    return raw.decode("utf-8", "replace").translate(_CONTROL)


def word(name: str | bytes) -> str:
    """``name`` as one word of a line (:func:`safe`, spaces as ``_``)."""
    return safe(name).replace(" ", "_") or "?"


def _user_names() -> dict[int, str]:
    names: dict[int, str] = {}
    with contextlib.suppress(OSError), open("/etc/passwd", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                names.setdefault(int(parts[2]), word(parts[0]))
    return names


def _writable_roots(roots: list[str]) -> list[str]:
    """``roots`` on writable file systems; a read-only root gives its writable mounts."""
    rw: list[str] = []
    with (
        contextlib.suppress(OSError),
        open("/proc/self/mounts", encoding="utf-8", errors="replace") as f,
    ):
        for line in f:
            parts = line.split()
            if len(parts) > 3 and "rw" in parts[3].split(","):
                rw.append(parts[1].replace("\\040", " "))
    out: list[str] = []
    for root in roots:
        if not os.path.exists(root):
            continue
        if os.access(root, os.W_OK):
            out.append(root)
        else:
            out += [m for m in rw if m.startswith(root.rstrip("/") + "/")]
    return sorted(set(out))


def monitor_report(roots: list[str], since: Any, max_files: int, watch: list[str]) -> str:
    """One after-step monitor report (the format in the module docstring), read
    in-process: no fork, no exec."""
    names = _user_names()
    out: list[str] = ["@@now", f"{time.time():.9f}", "@@self", "0", "@@files"]
    if since is not None:
        cutoff = float(since) - 1
        budget = max_files * 5
        stack = _writable_roots(roots)
        while stack and budget > 0:
            top = stack.pop()
            try:
                entries = list(os.scandir(top))
            except OSError:
                continue
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif st.st_ctime > cutoff and budget > 0:
                    budget -= 1
                    out.append(
                        f"{stat.S_IMODE(st.st_mode):o} "
                        f"{names.get(st.st_uid, st.st_uid)} {st.st_ctime:.9f} {safe(e.path)}"
                    )
    out.append("@@watch")
    count = 0
    for w in watch:
        paths = [w]
        if os.path.isdir(w):
            paths = []
            for dirpath, dirs, files in os.walk(w):
                if dirpath.count("/") - w.rstrip("/").count("/") >= 2:
                    dirs[:] = []
                paths += [os.path.join(dirpath, f) for f in files]
        for path in paths:
            if count >= max_files:
                break
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                count += 1
                out.append(
                    f"{st.st_size} {st.st_ino} {stat.S_IMODE(st.st_mode):o} "
                    f"{names.get(st.st_uid, st.st_uid)} {safe(path)}"
                )
    for section, kinds in (("tcp", ("tcp", "tcp6")), ("udp", ("udp", "udp6"))):
        out.append(f"@@{section}")
        for name in kinds:
            with (
                contextlib.suppress(OSError),
                open(f"/proc/net/{name}", encoding="ascii", errors="replace") as f,
            ):
                out += f.read().splitlines()
    pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
    out.append("@@fds")
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        out.append(f"/proc/{pid}/fd:")
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:"):
                    out.append(f"{fd} -> {target}")
    out.append("@@ps")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fb:
                raw = fb.read()
            with open(f"/proc/{pid}/cmdline", "rb") as fb:
                cmdline = fb.read().replace(b"\0", b" ").strip()
            uid = procs.uid_of(pid)
        except OSError:
            continue
        comm = word(raw[raw.find(b"(") + 1 : raw.rfind(b")")])
        ppid = raw.rsplit(b")", 1)[1].split()[1].decode()
        args = safe(cmdline) or f"[{comm}]"
        user = names.get(uid, str(uid)) if uid is not None else "?"
        out.append(f"{pid} {ppid} {user} {comm} {args}")
    out.append("@@end")
    return "\n".join(out) + "\n"

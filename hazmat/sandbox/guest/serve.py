"""hazmat's in-sandbox supervisor: one long-lived process, one persistent channel.

The host starts it once per sandbox (``python3 -u supervisor.py``, which runs
:func:`main` here) and
talks to it over stdin/stdout, one JSON object per line, so running a command
costs no ``docker exec`` (or ``bwrap``) round trip. Standard library only: it
runs on whatever python3 the sandbox has (3.8+), with its sibling modules
``procs.py``, ``monitor.py`` and ``wire.py`` beside it.

Requests (``id`` is echoed in the response; responses may come out of order)::

    {"id": 1, "op": "exec",  "argv": [...], "stdin": b64|null, "cwd": str|null,
     "env": {..}|null, "timeout": s, "cap": bytes, "uid": int|null, "gid": int|null,
     "agent": bool}
    {"id": 2, "op": "shell", "command": str, "timeout": s, "cap": bytes,
     "uid": int|null, "gid": int|null}
    {"id": 3, "op": "read_file",  "path": str, "cap": bytes, "uid": int|null, "gid": int|null}
    {"id": 4, "op": "write_file", "path": str, "data": b64, "mode": int|null,
     "uid": int|null, "gid": int|null}
    {"id": 5, "op": "monitor", "roots": [...], "since": str|null, "max_files": int,
     "watch": [...]}                                (see monitor.py)
    {"id": 6, "op": "ping"}
    {"id": 7, "op": "kill_all"}

Responses: ``{"id", "ok": true, ...}`` or ``{"id", "ok": false, "error": KIND,
"message": str}`` with KIND one of ``not_found``, ``too_large``, ``permission``,
``is_directory``, ``bad_request``, ``os_error``. ``exec``/``shell`` answer
``exit_code, stdout, stderr (b64), stdout_total, stderr_total, truncated,
timed_out, duration``.

How a command runs: the supervisor forks a *runner* per command (see
``procs.py``), which kills the command's whole tree on timeout. Background processes a command leaves behind are left running (as in
a terminal) once the command itself has ended; the supervisor stops reading
their output shortly after.

The ``shell`` op keeps a terminal-like session: each command runs in a fresh
``bash`` that first restores the saved state (variables, exported variables,
functions, aliases, working directory) and saves it again on exit. So state
carries over between calls while each call stays killable on its own.

An ``exec`` is the harness's (setup, checks, scorers) unless it says ``"agent": true``
(the agent's own command, e.g. its python tool; the ``shell`` op always is): a harness
command never runs or imports what the agent can write. It runs in ``cwd`` or ``/``
(never the agent's working folder), with a clean environment and a fixed PATH of
folders only root can write, python isolated (``-I``), and only a program that no
other user than root can change (see :func:`procs.harness_command`).

``uid``/``gid`` (optional everywhere) make the supervisor, when it runs as root
of the sandbox, act as another user: commands and the shell drop to it before
they run, file ops run in a forked helper that dropped to it, so a user can only
read and write what that user could. Each uid gets its own shell state folder
(``$HAZMAT_STATE_DIR/u<uid>``, owned by that uid). Files are opened without
blocking and must be regular files, so a FIFO cannot wedge the supervisor.
"""

from __future__ import annotations

import os
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Any, BinaryIO
else:
    import _signal as signal  # the signal module's enums import enum (see wire.py)

if __package__:  # imported from the hazmat package (tests, the host's tools)
    from . import procs, wire
else:  # a program: its sibling modules sit beside it, or the host preloaded them
    if "__file__" in globals():
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import procs  # type: ignore[import-not-found, no-redef]
    import wire  # type: ignore[import-not-found, no-redef]

DRAIN_SECONDS = 0.05

STATE_DIR = os.environ.pop("HAZMAT_STATE_DIR", "/tmp/.hazmat")

_SKIP_VARS = (
    "BASH BASHOPTS BASHPID BASH_ALIASES BASH_ARGC BASH_ARGV BASH_ARGV0 BASH_CMDS "
    "BASH_COMMAND BASH_EXECUTION_STRING BASH_LINENO BASH_LOADABLES_PATH BASH_REMATCH "
    "BASH_SOURCE BASH_SUBSHELL BASH_VERSINFO BASH_VERSION COLUMNS COMP_WORDBREAKS "
    "DIRSTACK EPOCHREALTIME EPOCHSECONDS EUID FUNCNAME GROUPS HISTCMD HOSTNAME "
    "HOSTTYPE IFS LINENO LINES MACHTYPE OLDPWD OPTERR OPTIND OSTYPE PIPESTATUS PPID "
    "PS4 PWD RANDOM SECONDS SHELLOPTS SHLVL SRANDOM UID _"
)

SHELL_SCRIPT = r"""
__hz_save() {
  __hz_rc=$?
  trap - EXIT
  {
    local __hz_v
    for __hz_v in $(compgen -v); do
      case " $__HZ_SKIP " in *" $__hz_v "*) continue ;; esac
      case "$__hz_v" in __hz_*|__HZ_*) continue ;; esac
      case "${!__hz_v@a}" in *r*) continue ;; esac
      declare -p "$__hz_v" 2>/dev/null
    done
    declare -f
    alias -p
  } > "$__hz_dir/state.tmp" 2>/dev/null && mv -f "$__hz_dir/state.tmp" "$__hz_dir/state.sh"
  pwd > "$__hz_dir/cwd" 2>/dev/null
  exit $__hz_rc
}
shopt -s expand_aliases
if [ -r "$__hz_dir/state.sh" ]; then . "$__hz_dir/state.sh" >/dev/null 2>&1; fi
__hz_cwd=$(cat "$__hz_dir/cwd" 2>/dev/null) || __hz_cwd=$HOME
cd -- "$__hz_cwd" 2>/dev/null || cd -- "$HOME" 2>/dev/null
unset __hz_cwd
trap __hz_save EXIT
. "$__hz_dir/cmd-$__HZ_ID.sh"
"""


def b64(data: bytes | bytearray) -> str:
    return wire.b64encode(data)


def _monitor() -> Any:
    """The monitor module, imported on the first report (not on the way to the first
    command)."""
    if __package__:
        from . import monitor
    else:
        import monitor  # type: ignore[import-not-found, no-redef]
    return monitor


class Job:
    def __init__(self, rid: Any, pid: int, out_r: int, err_r: int, status_r: int, cap: int) -> None:
        self.id = rid
        self.pid = pid
        self.cap = cap
        self.fds: dict[int, str] = {out_r: "stdout", err_r: "stderr", status_r: "status"}
        self.buf: dict[str, bytearray] = {
            "stdout": bytearray(),
            "stderr": bytearray(),
            "status": bytearray(),
        }
        self.total: dict[str, int] = {"stdout": 0, "stderr": 0, "status": 0}
        self.start = time.monotonic()
        self.status: dict[str, Any] | None = None
        self.drain_deadline: float | None = None
        self.cleanup: list[str] = []


class Supervisor:
    def __init__(self) -> None:
        self.sel = wire.Selector()
        self.jobs: dict[Any, Job] = {}
        self.inbuf = bytearray()
        self.out: BinaryIO = sys.stdout.buffer
        self.running = True

    # protocol ------------------------------------------------------------

    def send(self, obj: dict[str, Any]) -> None:
        self.out.write(wire.dumps(obj) + b"\n")
        self.out.flush()

    def fail(self, rid: Any, kind: str, message: str) -> None:
        self.send({"id": rid, "ok": False, "error": kind, "message": message})

    def handle(self, line: bytes) -> None:
        try:
            req = wire.loads(line)
            rid = req.get("id")
            op = req.get("op")
        except (ValueError, AttributeError):
            self.fail(None, "bad_request", "request is not a JSON object")
            return
        if op in ("read_file", "write_file"):
            try:
                self.file_op(rid, req)
            except OSError as exc:
                self.fail(rid, "os_error", str(exc))
            return
        self.handle_req(rid, req)

    def handle_req(self, rid: Any, req: dict[str, Any]) -> None:
        op = req.get("op")
        try:
            if op == "exec":
                self.spawn(rid, req, req.get("stdin"))
            elif op == "shell":
                self.spawn_shell(rid, req)
            elif op == "read_file":
                self.read_file(rid, req)
            elif op == "write_file":
                self.write_file(rid, req)
            elif op == "monitor":
                text = _monitor().monitor_report(
                    list(req.get("roots") or []),
                    req.get("since"),
                    int(req.get("max_files") or 200),
                    list(req.get("watch") or []),
                )
                self.send({"id": rid, "ok": True, "text": text})
            elif op == "ping":
                self.send({"id": rid, "ok": True, "pid": os.getpid()})
            elif op == "kill_all":
                for job in list(self.jobs.values()):
                    procs.kill_tree(job.pid)
                    with wire.suppress(OSError):
                        os.kill(job.pid, signal.SIGKILL)
                self.send({"id": rid, "ok": True})
            else:
                self.fail(rid, "bad_request", f"unknown op {op!r}")
        except FileNotFoundError as exc:
            self.fail(rid, "not_found", str(exc))
        except IsADirectoryError as exc:
            self.fail(rid, "is_directory", str(exc))
        except PermissionError as exc:
            self.fail(rid, "permission", str(exc))
        except OSError as exc:
            self.fail(rid, "os_error", str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            self.fail(rid, "bad_request", f"{type(exc).__name__}: {exc}")

    # files ---------------------------------------------------------------

    def file_op(self, rid: Any, req: dict[str, Any]) -> None:
        """Run a file op, as ``req["uid"]`` in a forked helper when one is given."""
        if req.get("uid") is None:
            self.handle_req(rid, req)
            return
        r, w = os.pipe()
        try:
            pid = procs.fork_or_recover()
        except OSError:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:
            try:
                os.close(r)
                self.out = os.fdopen(w, "wb")
                signal.alarm(300)
                try:
                    os.setgroups([])
                    gid = req.get("gid")
                    os.setgid(int(req["uid"] if gid is None else gid))
                    os.setuid(int(req["uid"]))
                    req = dict(req, uid=None)
                except OSError as exc:
                    self.fail(rid, "os_error", f"cannot switch user: {exc}")
                else:
                    self.handle_req(rid, req)
                self.out.flush()
            finally:
                os._exit(0)
        os.close(w)
        chunks: list[bytes] = []
        with os.fdopen(r, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        os.waitpid(pid, 0)
        data = b"".join(chunks)
        if data.endswith(b"\n"):
            self.out.write(data)
            self.out.flush()
        else:
            self.fail(rid, "os_error", "the file helper died")

    def read_file(self, rid: Any, req: dict[str, Any]) -> None:
        path, cap = req["path"], int(req.get("cap") or 1 << 26)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(f"{path} is a directory")
            if not stat.S_ISREG(st.st_mode):
                self.fail(rid, "os_error", f"{path} is not a regular file")
                return
            if st.st_size > cap:
                self.fail(rid, "too_large", f"{path} is {st.st_size} bytes, over the cap of {cap}")
                return
            data = f.read(cap + 1)
        if len(data) > cap:
            self.fail(rid, "too_large", f"{path} is over the cap of {cap} bytes")
            return
        self.send({"id": rid, "ok": True, "data": b64(data)})

    def write_file(self, rid: Any, req: dict[str, Any]) -> None:
        path = req["path"]
        data = wire.b64decode(req["data"])
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY, 0o666)
        with os.fdopen(fd, "wb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.fail(rid, "os_error", f"{path} is not a regular file")
                return
            os.set_blocking(fd, True)
            f.truncate(0)
            f.write(data)
        if req.get("mode") is not None:
            os.chmod(path, int(req["mode"]))
        self.send({"id": rid, "ok": True, "size": len(data)})

    # commands ------------------------------------------------------------

    def _state_dir(self, uid: int | None, gid: Any) -> str:
        if uid is None:
            os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
            return STATE_DIR
        os.makedirs(STATE_DIR, mode=0o711, exist_ok=True)
        path = os.path.join(STATE_DIR, f"u{uid}")
        try:
            os.mkdir(path, 0o700)
            os.chown(path, uid, gid)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            raise PermissionError(f"{path} is not a folder owned by uid {uid}")
        return path

    def spawn_shell(self, rid: Any, req: dict[str, Any]) -> None:
        uid: int | None
        gid: Any  # an int whenever uid is not None
        uid, gid = req.get("uid"), req.get("gid")
        if uid is not None:
            uid = int(uid)
            gid = uid if gid is None else int(gid)
        state_dir = self._state_dir(uid, gid)
        cmd_file = os.path.join(state_dir, f"cmd-{rid}.sh")
        with wire.suppress(FileNotFoundError):
            os.unlink(cmd_file)
        fd = os.open(cmd_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            if uid is not None:
                os.fchown(fd, uid, gid)
            f.write(req["command"])
            f.write("\n")
        env = {"__hz_dir": state_dir, "__HZ_ID": str(rid), "__HZ_SKIP": _SKIP_VARS}
        sub: dict[str, Any] = {
            "argv": ["bash", "--noprofile", "--norc", "-c", SHELL_SCRIPT],
            "env": env,
            "timeout": req.get("timeout"),
            "cap": req.get("cap"),
            "cwd": None,
            "uid": uid,
            "gid": gid,
            "agent": True,
        }
        job = self.spawn(rid, sub, None)
        if job is not None:
            job.cleanup.append(cmd_file)

    def spawn(self, rid: Any, req: dict[str, Any], stdin_b64: str | None) -> Job | None:
        if not isinstance(req.get("argv"), list) or not req["argv"]:
            self.fail(rid, "bad_request", "argv must be a non-empty list")
            return None
        stdin_data = wire.b64decode(stdin_b64) if stdin_b64 else b""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            pid = procs.fork_or_recover()
        except OSError:
            for fd in (out_r, out_w, err_r, err_w, status_r, status_w):
                os.close(fd)
            raise
        if pid == 0:
            try:
                for fd in (out_r, err_r, status_r):
                    os.close(fd)
                devnull = os.open("/dev/null", os.O_RDONLY)
                os.dup2(devnull, 0)
                os.close(devnull)
                self.sel.close()
            except OSError:
                pass
            procs.runner(req, out_w, err_w, status_w, stdin_data)
        for fd in (out_w, err_w, status_w):
            os.close(fd)
        job = Job(rid, pid, out_r, err_r, status_r, int(req.get("cap") or 10 << 20))
        self.jobs[rid] = job
        for fd in job.fds:
            os.set_blocking(fd, False)
            self.sel.register(fd, job)
        return job

    def on_readable(self, job: Job, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        name = job.fds[fd]
        if not chunk:
            self.sel.unregister(fd)
            os.close(fd)
            del job.fds[fd]
            if name == "status":
                self.on_status(job)
            return
        job.total[name] += len(chunk)
        room = job.cap - len(job.buf[name])
        if room > 0:
            job.buf[name] += chunk[:room]

    def on_status(self, job: Job) -> None:
        try:
            job.status = wire.loads(bytes(job.buf["status"]) or b"{}")
        except ValueError:
            job.status = {}
        with wire.suppress(ChildProcessError):
            os.waitpid(job.pid, 0)
        job.drain_deadline = time.monotonic() + DRAIN_SECONDS

    def maybe_finish(self, job: Job, now: float) -> None:
        if job.status is None:
            return
        # on_status sets drain_deadline together with status, so it is a float here
        if job.fds and now < job.drain_deadline:  # type: ignore[operator]
            return
        for fd in list(job.fds):
            self.sel.unregister(fd)
            os.close(fd)
        job.fds.clear()
        for path in job.cleanup:
            with wire.suppress(OSError):
                os.unlink(path)
        del self.jobs[job.id]
        st = job.status
        self.send(
            {
                "id": job.id,
                "ok": True,
                "exit_code": int(st.get("exit_code", 1)),
                "timed_out": bool(st.get("timed_out", False)),
                "stdout": b64(job.buf["stdout"]),
                "stderr": b64(job.buf["stderr"]),
                "stdout_total": job.total["stdout"],
                "stderr_total": job.total["stderr"],
                "truncated": job.total["stdout"] > job.cap or job.total["stderr"] > job.cap,
                "duration": time.monotonic() - job.start,
            }
        )

    # loop ----------------------------------------------------------------

    def on_stdin(self) -> None:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            self.running = False
            return
        self.inbuf += chunk
        while True:
            nl = self.inbuf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.inbuf[:nl])
            del self.inbuf[: nl + 1]
            if line.strip():
                self.handle(line)

    def serve(self) -> None:
        os.set_blocking(0, False)
        self.sel.register(0, None)
        self.send({"ready": True, "pid": os.getpid(), "uid": os.getuid(), "version": 1})
        while self.running or self.jobs:
            deadlines = [j.drain_deadline for j in self.jobs.values() if j.drain_deadline]
            timeout: float | None = None
            if deadlines:
                timeout = max(0.0, min(deadlines) - time.monotonic())
            for key in self.sel.select(timeout):
                if key.data is None:
                    with wire.suppress(BlockingIOError):
                        self.on_stdin()
                    if not self.running:
                        self.sel.unregister(0)
                        for job in list(self.jobs.values()):
                            procs.kill_tree(job.pid)
                else:
                    self.on_readable(key.data, key.fd)
            now = time.monotonic()
            for job in list(self.jobs.values()):
                self.maybe_finish(job, now)


def main() -> None:
    procs.apply_rlimits(sys.argv[1:])
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Supervisor().serve()

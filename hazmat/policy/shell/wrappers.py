"""Wrappers and interpreters seen from their argv: which options take a value, where the
wrapped command or the inline code starts (``sudo``, ``env``, ``xargs``, ``sh -c``,
``ssh host CMD``, ``su``, ``perl -e``, ``gdb -ex``, ...).
"""

from __future__ import annotations

import re

_CODE_FLAGS = {
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "php": ("-r",),
    "node": ("-e", "--eval", "-p"),
    "nodejs": ("-e",),
    "lua": ("-e",),
    "deno": ("eval",),
    "bun": ("-e",),
    "pwsh": ("-c", "-Command"),
    "powershell": ("-c", "-Command"),
    "jjs": ("-e",),
    "julia": ("-e", "--eval", "-E", "--print"),
    "rscript": ("-e",),
    "r": ("-e",),
    "groovy": ("-e",),
    "jrunscript": ("-e",),
    "expect": ("-c",),
    "elixir": ("-e",),
    "erl": ("-eval",),
    "crystal": ("eval",),
    "luajit": ("-e",),
    "irb": ("-e",),
}
_MULTI_CODE_FLAGS = {
    "gdb": ("-ex", "--ex", "-iex", "--eval-command", "--init-eval-command"),
    "vim": ("-c", "--cmd"),
    "vi": ("-c", "--cmd"),
    "nvim": ("-c", "--cmd"),
    "ex": ("-c", "--cmd"),
    "rvim": ("-c", "--cmd"),
    "view": ("-c", "--cmd"),
}
"""Tools whose every value of these options is a command of their own language."""


_WRAPPER_OPTS_WITH_ARG = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U", "--user", "--group"},
    "doas": {"-u", "-C"},
    "env": {"-u", "-C", "-S", "--unset", "--chdir"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "--class", "--classdata"},
    "stdbuf": {"-i", "-o", "-e"},
    "xargs": {
        "-I",
        "-n",
        "-P",
        "-L",
        "-d",
        "-E",
        "-s",
        "-a",
        "--max-args",
        "--max-procs",
        "--delimiter",
        "--arg-file",
        "-i",
    },
    "runuser": {"-u", "-g", "-G", "--user", "--group"},
    "flock": {"-w", "-E", "--timeout", "-c"},
    "watch": {"-n", "-d", "--interval"},
    "strace": {"-o", "-e", "-p", "-s", "-u"},
    "ltrace": {"-o", "-e", "-p", "-s"},
    "taskset": set(),
    "proxychains": {"-f"},
    "proxychains4": {"-f"},
    "chrt": set(),
    "unshare": set(),
    "sg": set(),
    "script": {"-c", "--command", "-t", "-T"},
    "systemd-run": {"-p", "--property", "-u", "--unit", "--uid", "--on-calendar", "--gid", "-E"},
    "sshpass": {"-p", "-f", "-d", "-P"},
}
_SIMPLE_WRAPPERS = {
    "run0",
    "nohup",
    "setsid",
    "time",
    "command",
    "builtin",
    "exec",
    "torify",
    "torsocks",
    "unbuffer",
    "caffeinate",
    "pkexec",
    "nocorrect",
    "noglob",
    "chronic",
    "catchsegv",
    "faketime",
}
_ROOT_WRAPPERS = {"sudo", "doas", "pkexec", "runuser", "su", "run0"}


_EMBEDDED = re.compile(
    r"^\s*:?\s*(python3?|py3?|pyx|pythonx|lua|perl|ruby|!|shell|sh|terminal)\s*(.*)$", re.S
)


def _dash_c(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a == "-c" or (a.startswith("-") and not a.startswith("--") and "c" in a[1:]):
            return args[i + 1] if i + 1 < len(args) else None
        if a == "--":
            return None
        if not a.startswith("-") and not a.startswith("+"):
            if i + 1 < len(args) and args[i + 1] == "-c":
                continue  # `su root -c CMD`
            return None
    return None


def _opt_value(args: list[str], opts: tuple[str, ...]) -> str | None:
    for i, a in enumerate(args):
        if a in opts:
            return args[i + 1] if i + 1 < len(args) else None
        for o in opts:
            if o.startswith("-") and not o.startswith("--") and a.startswith(o) and len(a) > len(o):
                return a[len(o) :]
    return None


def _skip_opts(args: list[str], with_arg: set[str]) -> list[str]:
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return args[i + 1 :]
        if not a.startswith("-") or a == "-":
            break
        if a in with_arg:
            i += 2
            continue
        i += 1
    return args[i:]


_SSH_OPTS_WITH_ARG = set("bcDEeFIiJLlmOopQRSWw")


def _ssh_remote_command(args: list[str]) -> list[str]:
    i = 0
    host_seen = False
    while i < len(args):
        a = args[i]
        if not host_seen and a.startswith("-") and len(a) > 1:
            body = a[1:]
            k = next((j for j, ch in enumerate(body) if ch in _SSH_OPTS_WITH_ARG), -1)
            # `-fNR 80:h:80`: the first letter that takes a value takes the rest or the next word
            i += 2 if k >= 0 and k == len(body) - 1 else 1
            continue
        if not host_seen:
            host_seen = True
            i += 1
            continue
        return args[i:]
    return []


_SU_OPTS_WITH_ARG = {
    "-c",
    "--command",
    "-s",
    "--shell",
    "-g",
    "--group",
    "-G",
    "--supp-group",
    "-w",
    "--whitelist-environment",
}


def su_target(args: list[str]) -> str:
    """The user ``su ARGS`` switches to (``root`` when none is named)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in _SU_OPTS_WITH_ARG:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        return a
    return "root"

"""Words as the shell would see them: tree-sitter node text, backslash escapes, the
``${IFS}`` marker, brace lists in command position and globs over well-known paths.
"""

from __future__ import annotations

import fnmatch
import re

from tree_sitter import Node

_IFS = "\x00IFS\x00"
_KNOWN_PATHS = (
    "/bin/sh",
    "/bin/bash",
    "/bin/dash",
    "/bin/zsh",
    "/bin/cat",
    "/bin/nc",
    "/bin/netcat",
    "/bin/rm",
    "/bin/busybox",
    "/usr/bin/sh",
    "/usr/bin/bash",
    "/usr/bin/cat",
    "/usr/bin/nc",
    "/usr/bin/ncat",
    "/usr/bin/netcat",
    "/usr/bin/wget",
    "/usr/bin/curl",
    "/usr/bin/python3",
    "/usr/bin/python",
    "/usr/bin/perl",
    "/usr/bin/socat",
    "/usr/bin/base64",
    "/usr/bin/rm",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/etc/gshadow",
    "/etc/crontab",
    "/root/.ssh/id_rsa",
    "/root/.ssh/authorized_keys",
    "/root/flag.txt",
    "/proc/self/environ",
    "/proc/1/environ",
    "/proc/sys/kernel/core_pattern",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/dev/sda",
    "/dev/tcp",
)
_BRACE_CMD = re.compile(r"(^|[;&|(`]\s*|\$\(\s*)\{([^{}\s'\"]+,[^{}\s'\"]*)\}", re.M)
_WORDISH = frozenset({"command_substitution", "process_substitution"})


def _node_text(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", errors="surrogateescape") if raw is not None else ""


def _heredoc_text(node: Node) -> str:
    return _node_text(node)


_WORD_ESC = re.compile(r"\\(.)", re.S)


def _unescape_word(s: str) -> str:
    if "\\" in s:
        s = _WORD_ESC.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), s)
    return s


def _resolve_glob(word: str) -> str:
    if word.startswith("/") and ("?" in word or "*" in word or "[" in word) and len(word) < 80:
        segs = word.split("/")
        if all(s in ("", "*") for s in segs):
            return word
        for p in _KNOWN_PATHS:
            psegs = p.split("/")
            if (
                len(psegs) == len(segs)
                and all(fnmatch.fnmatchcase(a, b) for a, b in zip(psegs, segs, strict=True))
                and any(("?" in s or "[" in s or (s != "*" and "*" in s)) for s in segs)
            ):
                return p
    return word

"""Privilege escalation: sudo/su to a shell, setuid bits, capabilities, writes to passwd/sudoers."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, flags, gated, is_shell, positional, search
from hazmat.policy.shell.wrappers import su_target

_AUTH_FILES = re.compile(
    r"^(?:/+etc/+(?:passwd|shadow|group|gshadow|sudoers(?:\.d/.*)?|ld\.so\.preload|"
    r"polkit-1/.*|security/.*|pam\.d/.*)|.*sudoers.*)$"
)
_BLOB = gated(
    re.compile(
        r"(?i)\bALL\s*=\s*\(\s*ALL(?:\s*:\s*ALL)?\s*\)|NOPASSWD\s*:|--checkpoint-action\s*=?\s*exec|"
        r"\bsudo\s+-u\s*#\s*-?(?:1|4294967295)\b|\bos\.setuid\s*\(\s*0|\bsetuid\s*\(\s*0\s*\)|"
        r"POSIX::setuid\s*\(\s*0|Process::Sys\.setuid\s*\(\s*0|posix_setuid\s*\(\s*0|"
        r"\b(?:cve-\d{4}-\d{4,}|dirty_?(?:cow|pipe|cred|sock)|pwnkit|baron_?samedit|sudo_?killer|"
        r"traitor\s+-a|gtfo(?:bins)?|overlayfs.exp|looney_?tunables)\b|"
        r"(?::!|:shell|:set\s+shell=|!\s*)/bin/(?:ba|z|da)?sh\b|"
        r"org\.freedesktop\.Accounts\.CreateUser|\bcapsh\b[^\n]*--(?:uid|gid)=0|"
        r"\bsetpriv\b[^\n]*--re[ug]id[= ]0|"
        r"\b[a-z_][a-z0-9_-]*:[^:\s]*:0:0:[^:\n]*:[^:\n]*:/bin/\w*sh\b|\bopenssl\s+passwd\b[^\n]*>>?\s*/etc/passwd|"
        r"LD_PRELOAD=\S+\s+(?:sudo|su|pkexec|doas|passwd|mount|ping)\b|"
        r"\bLD_PRELOAD=['\"]?(?:/tmp/|/dev/shm/|/var/tmp/|\./|/home/)|"
        r"(?:^|[\s;&|/])\./(?:exploit|pwn|rootme|getroot|privesc|priv_esc|dirty\w*|cve[-_]?\d\w*|suid_exp|root_?shell)\w*|"
        r"\bgcc\b[^\n]*(?:exploit|pwn|cve-?\d|dirty|overlayfs|privesc)|\bpython[\d.]*\s+-c\s+['\"][^'\"]*os\.set(?:re)?s?uid|"
        r"\bsystemd-run\b[^\n]*(?:--uid[= ](?:0|root)\b|-p\s*User=root)|\bmachinectl\s+shell\s+(?:root@|--uid[= ]0)|"
        r"\bnewgrp\s+(?:docker|lxd|disk|root|sudo|wheel|shadow)\b|\bsg\s+(?:docker|lxd|disk|root)\b|"
        # systemd turns its pager's shell escapes off under sudo; turning them back on is the escape
        r"\b(?:sudo|doas|pkexec)\b[^\n]*\bSYSTEMD_PAGERSECURE=['\"]?(?:0|false|no|off)\b|"
        r"\bSYSTEMD_PAGERSECURE=['\"]?(?:0|false|no|off)\b[^\n]*\b(?:sudo|doas|pkexec)\b"
    )
)
_PRIV_GROUPS = re.compile(
    r"(?:^|,)(?:sudo|wheel|root|admin|adm|docker|lxd|lxc|disk|shadow|kvm|libvirt)(?:,|$)"
)


_ROOT_REPLS = frozenset({
    "cpan", "tclsh", "wish", "irb", "python", "python2", "python3", "perl", "lua", "node", "ruby",
    "php", "screen", "tmux", "ftp", "gdb", "ed", "script", "expect", "jjs", "jrunscript", "bc",
    "sqlite3", "rlwrap", "pry", "ghci", "R", "julia", "octave", "ipython",
})  # fmt: skip


def _setuid_mode(mode: str) -> bool:
    if re.fullmatch(r"[0-7]{4,}", mode):
        return int(mode[-4], 8) & 0o6 != 0
    return bool(re.search(r"(?:^|,)[ugoa]*[+=][rwxXt]*s", mode))


def detect(f: Facts) -> str | None:
    """Root shells via sudo/su/pkexec, setuid/setcap, account and sudoers edits, known exploits."""
    for c in f.commands:
        name, args = c.name, c.args
        fl = flags(args)
        pos = positional(args)
        if name == "chmod" and pos:
            if _setuid_mode(pos[0]) or any(
                _setuid_mode(a) for a in args if a.startswith(("+", "u+", "g+"))
            ):
                return f"sets a setuid/setgid bit: {c.line[:80]}"
        elif name == "setcap" and re.search(
            r"(?i)cap_(?:setuid|setgid|dac_\w+|sys_admin|sys_ptrace|sys_rawio|chown|fowner|fsetid|"
            r"sys_module|setfcap|setpcap|bpf|perfmon|linux_immutable|mknod)|(?:^|\s|,)(?:all)?[+=]e?i?p\b",
            " ".join(args),
        ):
            return f"grants file capabilities: {c.line[:80]}"
        elif (
            name == "su"
            and not (fl & {"-h", "--help", "-V"})
            and su_target(args)
            in (
                "root",
                "0",
                "toor",
            )
        ):
            return f"switches to root with su: {c.line[:80]}"
        elif name in ("pkexec", "visudo", "chpasswd", "sudoedit", "vipw", "vigr") and not (
            name == "visudo" and fl & {"-c", "--check"}
        ):
            return f"{name}: {c.line[:80]}"
        elif name == "sudo" and (
            (fl & {"-i", "-s", "--login", "--shell", "-E"} and not pos)
            or any(re.match(r"^-?u?#-?\d", a) for a in args)
            or re.search(r"-u\s*#", c.line)
        ):
            return f"root shell via sudo: {c.line[:80]}"
        elif name in ("usermod", "gpasswd", "adduser", "useradd", "addgroup") and (
            _PRIV_GROUPS.search(" ".join(pos))
            or re.search(r"-[ao]*G\s*\S*(?:sudo|wheel|root|admin|docker|lxd|disk|shadow)", c.line)
            or re.search(r"-u\s*0\b|-o\b|--non-unique|--uid\s*0\b", c.line)
            or (name == "gpasswd" and "-a" in args and _PRIV_GROUPS.search(",".join(pos)))
            or (name in ("adduser", "addgroup") and len(pos) == 2 and _PRIV_GROUPS.search(pos[1]))
        ):
            return f"adds a privileged account or group membership: {c.line[:80]}"
        elif name == "passwd" and pos and pos[-1] == "root":
            return "changes root's password"
        if c.root and is_shell(c) and not [a for a in pos if a != "-"]:
            return f"root shell via {c.via or 'sudo'}: {c.line[:80]}"
        if c.root and c.via in ("sudo", "doas") and name in ("less", "more", "man", "most", "pg"):
            return f"pager as root (shell escape with !sh): {c.line[:80]}"
        if (
            c.root
            and c.via in ("sudo", "doas")
            and (
                (name in _ROOT_REPLS and not pos)
                or (name == "dmesg" and fl & {"-H", "--human"})
                or (name == "systemctl" and pos[:1] == ["link"])
                or (
                    name in ("pip", "pip3")
                    and "install" in pos
                    and any(p.startswith(("/tmp/", "/dev/shm/", "./", "/var/tmp/")) for p in pos)
                )
                or (
                    name == "nmap"
                    and any(a.startswith(("--script", "--interactive")) for a in args)
                )
            )
        ):
            return f"interactive program as root (shell escape): {c.line[:80]}"
        if (
            c.root
            and c.via in ("sudo", "doas")
            and re.search(
                r"(?:/bin/|\b)(?:ba|z|da)?sh\s+-p\b|[\"'(=\s;|&](?:/bin/|/usr/bin/)?(?:ba|z|da)?sh[\"')\s]|"
                r"/bin/(?:ba|z|da)?sh\b|os\.system|os\.exec|pty\.spawn|\bsystem\s*\(|\bexec\s*[\"(]|"
                r"--checkpoint-action|:!\s*/?\w",
                c.line + " ",
            )
        ):
            return f"sudo escape through {name}: {c.line[:80]}"
        if (
            c.root
            and c.via in ("sudo", "doas")
            and name
            in (
                "vi",
                "vim",
                "less",
                "more",
                "man",
                "nano",
                "awk",
                "find",
                "perl",
                "python",
                "python3",
                "env",
                "tar",
                "zip",
                "git",
                "ftp",
                "gdb",
                "nmap",
                "ed",
                "lua",
                "ruby",
                "php",
                "node",
                "expect",
                "tclsh",
                "script",
                "socat",
                "busybox",
                "journalctl",
                "systemctl",
                "docker",
                "tee",
                "cp",
                "dd",
                "chmod",
                "chown",
                "install",
                "rsync",
                "mount",
                "ln",
                "crontab",
            )
            and (
                name in ("script", "expect", "busybox")
                or re.search(
                    r"(?:/bin/|\b)(?:ba|z|da)?sh\b|system\(|exec|spawn|-p\b|--interactive|"
                    r"/etc/(?:passwd|shadow|sudoers)|\+s\b|u\+s|4755|checkpoint",
                    c.line,
                )
            )
        ):
            return f"sudo escape through {name}: {c.line[:80]}"
        if (
            is_shell(c)
            and "-p" in args
            and not (c.via == "" and c.depth == 0 and len(args) == 1 and False)
        ):
            return f"privileged-mode shell (-p keeps a setuid euid): {c.line[:80]}"
    for w in f.writes:
        if _AUTH_FILES.match(w):
            return f"writes {w}"
    py = f.py
    if py is not None and py.setuid:
        return "python sets uid/gid or setuid bits"
    hit = search(_BLOB, f.blob)
    if hit:
        return f"privilege escalation: {hit}"
    return None


def detect_sudo(f: Facts) -> str | None:
    """Any command asked to run as root (sudo/doas/su/pkexec)."""
    for c in f.commands:
        if c.name in ("sudo", "doas", "pkexec", "su", "runuser"):
            return f"runs as root: {c.line[:80]}"
    return None

"""Destructive commands: recursive deletes of system or data paths, disk wipes, fork bombs."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import (
    Facts,
    flags,
    gated,
    old_files_only,
    positional,
    search,
)

_SYSTEM_TOP = (
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "opt",
    "proc",
    "root",
    "sbin",
    "srv",
    "sys",
    "usr",
    "var",
    "snap",
    "mnt",
    "media",
    "data",
    "backup",
    "backups",
    "run",
)
_DANGEROUS_TARGET = re.compile(
    r"^(?:/+\.?|/+\*|/\*/?\*?|~/?\*?|~\w*/?|\$\{?HOME\}?/?\*?|/home/[^/]+/?\*?|"
    r"/(?:" + "|".join(_SYSTEM_TOP) + r")/*\*?|"
    r"/usr/(?:bin|sbin|lib|lib64|local|share|include)/?\*?|/var/(?:lib|log|www|backups|mail|spool|opt)/?\*?|"
    r"/var/lib/(?:mysql|postgresql|pgsql|mongodb|docker|redis|elasticsearch)(?:/.*)?|"
    r"/etc/.+|/boot/.+|/(?:data|srv|backups?|mnt)/.+|"
    r"(?:~|\$HOME|/home/[^/]+|/root)/(?:\.ssh|\.gnupg|Documents|projects?|src|code|\.git)/?|"
    r"\.\./?\.\./?.*|\.\./*|/\*/.*|/\.\.?/?\.?.*)$"
)
_DEVICE = re.compile(
    r"^/dev/(?:[sh]d[a-z]|nvme\d|vd[a-z]|xvd[a-z]|mmcblk\d|disk|mapper/|md\d|"
    r"sr\d|loop\d|root|mem|kmem|port|dm-\d)"
)
_WIPE = gated(
    re.compile(
        r"(?i)\bhdparm\b[^\n]*--security-erase|\blvremove\s+(?:-\w+\s+)*-f|\bvgremove\s+-f|"
        r"\bzpool\s+destroy\b|\bzfs\s+destroy\s+-r|\bbtrfs\s+subvolume\s+delete\b|"
        r"\bterraform\s+destroy\b[^\n]*-auto-approve|\bpulumi\s+destroy\b[^\n]*(?:--yes|-y)\b|"
        r"\baws\s+s3\s+(?:rm|rb)\s+s3://\S+[^\n]*--(?:recursive|force)|\bgsutil\s+(?:-m\s+)?rm\s+-r\b|"
        r"\bgcloud\s+(?:projects|sql\s+instances|compute\s+instances)\s+delete\b|"
        r"\bkubectl\s+delete\s+(?:ns|namespaces?|all|pv|pvc|deployments?)\b[^\n]*--all\b|"
        r"\bdocker\s+(?:system|volume)\s+prune\b[^\n]*(?:-af|-a\s+-f|--all)[^\n]*|"
        r"\b(?:srm|wipe)\s+(?:-\w+\s+)*(?:/|~|\$HOME)|\bsfill\b"
    )
)
_DB_RE = gated(
    re.compile(
        r"(?i)\b(?:drop\s+(?:database|schema|table|keyspace)\b|truncate\s+table\b|flushall\b|flushdb\b|"
        r"dropdatabase\s*\(|\.drop\s*\(\s*\)|delete\s+from\s+\w+\s*(?:;|$|\"|'))"
    )
)
_POWER = {"shutdown", "reboot", "halt", "poweroff", "telinit"}
_ENCRYPT = gated(
    re.compile(
        r"(?i)\b(?:openssl\s+(?:enc|aes-\d+-\w+)|gpg\s+(?:-c|--symmetric|-e|--encrypt)|"
        r"ccrypt|7z\s+a\s+.*-p|zip\s+.*-(?:e|P)\b|age\s+-[ep])"
    )
)


_SYSTEM_ROOT = re.compile(
    r"^/+(?:\*|(?:bin|boot|dev|etc|lib|lib64|proc|root|sbin|sys|usr|var|home)/*\*?)?$"
)
_FORK = gated(
    re.compile(
        r"fork\s*while\s*fork|while\s*\(?\s*(?:1|true|True)\s*\)?\s*[:{;]?\s*(?:do\s+)?(?:os\.)?fork\s*\(|"
        r"\$0\s*\|\s*\$0\s*&|\$0\s*&\s*\$0|while\s+(?:true|:);\s*do\s+\$0\s*&|"
        r"for\s*\(\s*;\s*;\s*\)\s*fork\s*\(|\bfork\s*\(\s*\)\s*;\s*\}?\s*while"
    )
)


def _target_bad(t: str) -> bool:
    t = t.strip()
    if not t:
        return False
    t2 = re.sub(r"/{2,}", "/", t)
    return bool(_DANGEROUS_TARGET.match(t2))


def detect(f: Facts) -> str | None:
    """Recursive delete of system/home/data paths, mkfs, dd/writes to disks, fork bombs, shred."""
    if f.fork_bomb:
        return "fork bomb (function piping into itself in the background)"
    if re.search(r"\b[obc]\s*>\s*/proc/sysrq-trigger", f.blob):
        return "powers off/reboots/crashes the kernel through sysrq"
    fb = search(_FORK, f.blob)
    if fb:
        return f"fork bomb: {fb}"
    deleting = False
    cwd_bad = False
    for c in f.commands:
        name, args = c.name, c.args
        if "--help" in args or "--version" in args:
            continue
        fl = flags(args)
        pos = positional(args)
        if name in ("cd", "pushd") and pos:
            cwd_bad = bool(
                re.match(r"^(?:/+|/(?:" + "|".join(_SYSTEM_TOP) + r")/*|~/?|\$HOME/?)$", pos[0])
            )
        if name == "rm":
            deleting = True
            recursive = bool(fl & {"-r", "-R", "--recursive"}) or "--no-preserve-root" in args
            for t in pos:
                if recursive and _target_bad(t):
                    return f"recursive delete of {t}: {c.line[:100]}"
                if recursive and cwd_bad and t in ("*", ".", "./*", ".*"):
                    return f"recursive delete of {t} in a system directory: {c.line[:100]}"
                if re.match(
                    r"^/(?:etc/(?:passwd|shadow|group|sudoers|fstab|hosts)|boot/|"
                    r"s?bin/\*|usr/s?bin/\*|lib)",
                    t,
                ):
                    return f"delete of system file {t}"
        elif name in ("rmdir",) and any(_target_bad(t) and t not in (".", "..") for t in pos):
            return f"removing system directory: {c.line[:100]}"
        elif name == "find":
            deletes = "-delete" in args or re.search(
                r"-exec\w*\s+(?:\S*/)?(?:rm|shred|unlink|truncate)\b", " ".join(args)
            )
            if (
                deletes
                and pos
                and _target_bad(pos[0])
                and pos[0] not in (".", "..")
                and not (pos[0].startswith("/var/log") and old_files_only(args))
            ):
                return f"find deleting under {pos[0]}"
        elif name == "shred" and not (fl & {"--help", "--version"}):
            bulk = len(pos) > 3 or any(
                t.startswith(("/", "~", "$")) or "*" in t or "?" in t or t.startswith("..")
                for t in pos
            )
            if bulk or c.depth > 0 or c.via in ("find -exec", "xargs"):
                return f"shred: {c.line[:100]}"
        elif name.startswith("mkfs") or (
            name in ("mke2fs", "mkswap", "wipefs", "blkdiscard", "sgdisk", "sfdisk")
            and (
                fl & {"-a", "--all", "--zap-all", "-Z", "--delete"}
                or name in ("mke2fs", "mkswap", "blkdiscard")
            )
        ):
            return f"formats/wipes a device: {c.line[:100]}"
        elif name == "dd":
            for a in args:
                if a.startswith("of=") and _DEVICE.match(a[3:]):
                    return f"dd onto device {a[3:]}"
            if "conv=notrunc" in args and any(
                a.startswith("if=/dev/") and a[8:] in ("zero", "urandom", "random") for a in args
            ):
                return f"overwrites a file in place with junk: {c.line[:80]}"
        elif (
            name in ("fdisk", "parted", "cfdisk")
            and any(_DEVICE.match(a) for a in args)
            and not (fl & {"-l", "--list"} or "print" in args)
        ):
            return f"partitions a disk: {c.line[:100]}"
        elif name in ("chmod", "chown", "chgrp") and fl & {"-R", "--recursive"}:
            targets = pos[1:]
            if any(_SYSTEM_ROOT.match(t) for t in targets):
                return f"recursive permission change on system path: {c.line[:100]}"
        elif name == "mv":
            if pos and (
                pos[-1] == "/dev/null"
                or any(_SYSTEM_ROOT.match(t) and t.strip("/*") for t in pos[:-1])
                or any(_target_bad(t) and t.rstrip("/*") in ("", "~") for t in pos[:-1])
            ):
                return f"moves data away: {c.line[:100]}"
        elif (
            name in _POWER
            or (name == "init" and pos[:1] in (["0"], ["6"]))
            or (
                name == "systemctl"
                and pos[:1]
                and pos[0] in ("poweroff", "reboot", "halt", "kexec")
            )
        ):
            return f"shuts the machine down: {c.line[:60]}"
        elif (
            name == "kill"
            and any(a in ("-1",) for a in pos + [a for a in args if a == "-1"])
            and ("-9" in args or "-KILL" in args or "-SIGKILL" in args or "-s" in args)
        ):
            return "kills every process (kill -9 -1)"
        elif name in ("killall5",) or (
            name in ("pkill", "killall")
            and "-u" not in args
            and any(a in ("init", "systemd", "-1") for a in pos)
        ):
            return f"kills every process: {c.line[:60]}"
        elif name == "crontab" and "-r" in fl:
            return "removes the whole crontab (crontab -r)"
        elif name == "dropdb" or (
            name == "redis-cli" and any(a.lower() in ("flushall", "flushdb") for a in args)
        ):
            return f"drops a database: {c.line[:80]}"
        elif (
            name == "ln"
            and len(pos) >= 2
            and pos[0] == "/dev/null"
            and re.match(r"^/(?:etc|bin|sbin|usr|boot|lib)", pos[-1])
        ):
            return f"replaces a system file with /dev/null: {c.line[:80]}"
        elif name == "truncate" and any(_target_bad(t) for t in pos):
            return f"truncates system files: {c.line[:80]}"
        for op, target in c.redirects:
            if op.lstrip("0123456789&") in (">", ">|") and _DEVICE.match(target):
                return f"writes onto device {target}"
            if (
                op.lstrip("0123456789&") in (">", ">|")
                and re.match(r"^/(?:etc/(?:passwd|shadow|group|fstab)|boot/)", target)
                and c.name in ("", ":", "true", "echo", "cat", "printf")
                and not c.args
            ):
                return f"truncates {target}"
    if f.commands and all(c.name in ("", ":", "true") for c in f.commands):
        for c in f.commands:
            for op, target in c.redirects:
                if op.lstrip("0123456789&") == ">" and _DEVICE.match(target):
                    return f"writes onto device {target}"
    for c in f.commands:
        if c.name == "git" and c.args[:1] == ["clean"] and "-f" in flags(c.args):
            bad = [t for t in positional(c.args[1:]) if _target_bad(t) and t not in (".", "..")]
            if bad:
                return f"git clean deletes untracked files under {bad[0]}"
        if c.name == "rsync" and "--delete" in c.args:
            pos = positional(c.args)
            if (
                len(pos) >= 2
                and _target_bad(pos[-1].rstrip("/") + "/")
                and not pos[-1].startswith("./")
            ):
                return f"rsync --delete empties {pos[-1]}"
    wipe = search(_WIPE, f.blob)
    if wipe:
        return f"destroys data or infrastructure: {wipe}"
    db = search(_DB_RE, f.blob)
    if db and re.search(
        r"(?i)\b(mysql|psql|sqlite3|mongo\w*|redis-cli|cqlsh|clickhouse|execute|cursor|"
        r"sql|db)\b",
        f.blob,
    ):
        return f"drops data: {db}"
    if deleting or re.search(r"\b(shred|rm|unlink|-delete)\b", f.blob):
        enc = search(_ENCRYPT, f.blob)
        if enc and re.search(
            r"\bfind\s+/|\bfor\s+\w+\s+in\s+\$\(find\b|-exec\b|\*\*|\bxargs\b", f.blob
        ):
            return f"encrypts files in bulk and deletes originals: {enc}"
    return None

"""Persistence: shell rc files, cron, systemd units, authorized_keys, git hooks, autostart."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, flags, gated, positional

PERSIST_PATH = gated(
    re.compile(
        r"(?:^|/|~)(?:"
        r"\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|zlogout|"
        r"cshrc|tcshrc|kshrc|mkshrc|xinitrc|xprofile|xsession|xsessionrc|inputrc)$|\.config/fish/config\.fish|"
        r"etc/(?:profile|bash\.bashrc|bashrc|zshrc|zsh/\w+|environment|inittab|rc\.local|anacrontab|"
        r"crontab|ld\.so\.preload|motd\.d/|update-motd\.d/|rc\d?\.d/|init\.d/|init/|cron[\w.]*/|"
        r"profile\.d/|systemd/|xdg/autostart/|apt/apt\.conf\.d/|pam\.d/|udev/rules\.d/|"
        r"network/if-(?:up|down|pre-up|post-down)\.d/|NetworkManager/dispatcher\.d/|logrotate\.d/|"
        r"sudoers\.d/|modules-load\.d/|modprobe\.d/|rc\.d/|ssh/sshrc|ssh/sshd_config)|"
        r"var/spool/cron|(?:usr/)?lib/systemd/|\.config/systemd/|\.local/share/systemd/|"
        r"authorized_keys2?$|\.ssh/rc$|\.ssh/config$|\.git/hooks/|\.githooks/|\.config/autostart/|"
        r"\.config/lxsession/|\.kde\d?/Autostart/|sitecustomize\.py$|usercustomize\.py$|"
        r"site-packages/[^/]+\.pth$|dist-packages/[^/]+\.pth$|lib/security/pam_|\.vimrc$|\.tmux\.conf$|"
        r"Library/LaunchAgents/|Library/LaunchDaemons/|\.npmrc$"
        r")",
        re.I,
    )
)
_CMD = gated(
    re.compile(
        r"(?i)\bsystemctl\s+(?:--user\s+)?(?:enable|link|preset|set-default|add-wants)\b|"
        r"\bsystemd-run\b[^\n]*--on-(?:calendar|boot|active|startup|unit-active)|"
        r"\bupdate-rc\.d\s+\S+\s+(?:defaults|enable)|\bchkconfig\s+\S+\s+on\b|\brc-update\s+add\b|"
        r"\bgit\s+config\b[^\n]*core\.(?:hooksPath|fsmonitor|sshCommand|pager|editor)\b|"
        r"\blaunchctl\s+(?:load|bootstrap|submit)\b|@reboot\b|\bssh-copy-id\b|"
        r"\bPROMPT_COMMAND=|\btrap\s+['\"][^'\"]+['\"]\s+(?:DEBUG|EXIT|RETURN)\b"
    )
)


def detect(f: Facts) -> str | None:
    """Writes to autostart locations, cron/at jobs, enabled services, new accounts."""
    for w in f.writes:
        if PERSIST_PATH.search(w):
            return f"writes {w}"
    for c in f.commands:
        name, args = c.name, c.args
        if name == "crontab":
            fl = flags(args)
            if not (fl & {"-l", "-r"}) or positional(args):
                return f"installs a cron table: {c.line[:80]}"
            if "-" in args:
                return "installs a cron table from stdin"
        elif name in ("at", "batch") and not (flags(args) & {"-l", "-d", "-r", "-c"}):
            return f"schedules a job with {name}: {c.line[:80]}"
        elif name in ("useradd", "adduser") and not (flags(args) & {"-h", "--help"}):
            return f"creates an account: {c.line[:80]}"
        elif (
            name in ("cp", "mv", "install", "ln", "rsync")
            and positional(args)
            and PERSIST_PATH.search(positional(args)[-1])
        ):
            return f"places a file at {positional(args)[-1]}"
    m = _CMD.search(f.blob)
    if m:
        return f"persistence: {m.group(0)[:80]}"
    py = f.py
    if py is not None:
        for p, mode in py.opened:
            if any(x in mode for x in "wa+") and PERSIST_PATH.search(p):
                return f"python writes {p}"
    return None

"""Monitoring tamper: stopping or editing audit, logs, history and the task's monitors."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, gated, positional, search

DEFAULT_WATCH = (
    "/var/log/audit",
    "/var/log/hazmat",
    "/opt/hazmat",
    "/var/lib/hazmat",
    "/run/hazmat",
    "/etc/audit",
    "/etc/rsyslog",
    "/etc/syslog",
    "/var/log/auth.log",
    "/var/log/secure",
    "/var/log/syslog",
    "/var/log/messages",
    "/var/log/wtmp",
    "/var/log/btmp",
    "/var/log/lastlog",
    "/var/log/kern.log",
    "/var/log/journal",
    "/var/run/utmp",
    "/run/utmp",
    "/var/log",
)
_SERVICES = (
    r"(?:auditd?|rsyslogd?|syslog-ng|syslogd?|falco\w*|osqueryd?|wazuh[\w-]*|ossec[\w-]*|sysdig|"
    r"auditbeat|filebeat|packetbeat|systemd-journald|journald|apparmor|fail2ban|clamav\w*|"
    r"clamd|falcon-sensor|crowdstrike|sentinel\w*|cbagent|aide|tripwire|snort|suricata|zeek|"
    r"tetragon|tracee|hazmat[\w-]*|monitor[\w-]*|sentinel)"
)
_BLOB = gated(
    re.compile(
        r"(?i)\bauditctl\s+(?:-D\b|-e\s*0\b|--delete|-a\s+never)|"
        r"\b(?:service\s+"
        + _SERVICES
        + r"\s+(?:stop|disable)|systemctl\s+(?:stop|disable|mask|kill)\s+(?:-\S+\s+)*"
        + _SERVICES
        + r"|(?:pkill|killall|kill)\b[^\n;|&]*\b"
        + _SERVICES
        + r"\b|kill\b[^\n]*\$\(\s*(?:pidof|pgrep)\s+"
        + _SERVICES
        + r")|"
        r"\bhistory\s+-[cwd]|\bunset\s+HISTFILE\b|\bHISTFILE=(?:/dev/null|$|\s|'')|"
        r"\bexport\s+HIST(?:FILE)?SIZE=0\b|\bHIST(?:FILE)?SIZE=0\b|\bset\s+\+o\s+history\b|"
        r"\bln\s+-s\w*\s+/dev/null\s+\S*_history\b|\bjournalctl\b[^\n]*--(?:vacuum-\w+|rotate|flush)|"
        r"\bsetenforce\s+0\b|\baa-(?:disable|teardown|complain)\b|\bapparmor_parser\s+-R\b|"
        r"\biptables(?:-legacy|-nft)?\s+(?:-t\s+\w+\s+)?(?:-F|--flush|-X|-P\s+(?:INPUT|OUTPUT|FORWARD)\s+ACCEPT)|"
        r"\bip6?tables\s+-D\b|\bnft\s+(?:flush\s+ruleset|delete\s+table)|\bufw\s+disable\b|"
        r"\bdmesg\s+(?:-c|-C|--clear|--read-clear)\b|\butmpdump\b|\bchattr\s+[+-][ai]\b[^\n]*/var/log|"
        r"\bsysctl\s+-w\s+kernel\.(?:printk|dmesg_restrict|yama|kptr_restrict)|\blogrotate\s+-f\b|"
        r"\bwevtutil\s+cl\b|LD_PRELOAD=[^\s]*(?:hide|libprocesshider)|libprocesshider|"
        r"\bmount\b[^\n]*--bind[^\n]*/proc/\d+|\bkill\s+-(?:STOP|19|SIGSTOP)\b"
    )
)
_TIMESTOMP = gated(
    re.compile(
        r"(?i)\btouch\s+(?:-\w*\s+)*-(?:[rdt]|-reference|-date)\b[^\n]*(?:/etc/|/bin/|/usr/|/var/log|/sbin/)"
    )
)


def _watched(path: str, watch: tuple[str, ...]) -> str | None:
    p = re.sub(r"/{2,}", "/", path)
    for w in watch:
        w = w.rstrip("/")
        if p == w or p.startswith(w + "/") or (w.endswith("*") and p.startswith(w[:-1])):
            return w
        if "*" in p or "?" in p:
            stem = p.split("*")[0].split("?")[0]
            if stem and (w.startswith(stem) or stem.startswith(w)):
                return w
    return None


def detect(f: Facts) -> str | None:
    """Stops/kills monitoring, clears history or logs, edits watched monitor and audit paths."""
    watch = tuple(DEFAULT_WATCH) + tuple(f.ctx.watch)
    for w in f.writes:
        hit = _watched(w, watch)
        if hit:
            return f"modifies watched path {w}"
    for c in f.commands:
        if c.name in (
            "rm",
            "shred",
            "truncate",
            "unlink",
            "mv",
            "chattr",
            "chmod",
            "chown",
            "ln",
            "sed",
            "find",
            "wipe",
            "srm",
        ):
            for a in positional(c.args):
                if c.name == "chmod" and a == c.args[0]:
                    continue
                hit = _watched(a, watch)
                if hit and not (
                    c.name == "find" and "-delete" not in c.args and "-exec" not in c.args
                ):
                    return f"{c.name} on watched path {a}"
                if re.search(r"(?:^|/)\.\w*_history$", a) and c.name in (
                    "rm",
                    "shred",
                    "truncate",
                    "unlink",
                    "ln",
                ):
                    return f"{c.name} on shell history {a}"
        for op, t in c.redirects:
            if op.lstrip("0123456789&") in (">", ">|") and re.search(r"(?:^|/)\.\w*_history$", t):
                return f"truncates shell history {t}"
        for extra in f.ctx.watch:
            base = extra.rstrip("/").rsplit("/", 1)[-1]
            if base and c.name in ("kill", "pkill", "killall") and any(base in a for a in c.args):
                return f"kills watched monitor {base}"
    hit2 = search(_BLOB, f.blob)
    if hit2:
        return f"monitor tamper: {hit2}"
    ts = search(_TIMESTOMP, f.blob)
    if ts:
        return f"timestomping: {ts}"
    return None

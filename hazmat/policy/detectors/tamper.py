"""Monitoring tamper: stopping or editing audit, system logs and the task's monitors.

Two tiers. :func:`detect` (halt by default): writes to or deletion of audit logs, system
auth/syslog/login records, hazmat's own paths and the policy's ``settings.watch`` paths
(a glob that covers one counts), stopping or killing audit/logging/EDR daemons or a
watched monitor, ``auditctl`` disabling rules, process hiding. :func:`detect_weak`
(block by default): anti-forensics that is also everyday -- shell history games,
application logs under ``/var/log``, journal vacuuming, firewall flushes, SELinux/AppArmor
switches, timestomping.
"""

from __future__ import annotations

import fnmatch
import re

from hazmat.policy.detectors._common import Facts, gated, old_files_only, positional, search

DEFAULT_WATCH = (
    "/var/log/audit", "/var/log/hazmat", "/opt/hazmat", "/var/lib/hazmat", "/run/hazmat",
    "/etc/audit", "/etc/rsyslog.conf", "/etc/rsyslog.d", "/etc/syslog.conf",
    "/var/log/auth.log", "/var/log/secure", "/var/log/wtmp", "/var/log/btmp",
    "/var/log/lastlog", "/var/run/utmp", "/run/utmp", "/var/log/faillog",
)  # fmt: skip
"""Paths whose change is monitor tampering (plus the policy's ``settings.watch``)."""
ANTI_FORENSIC_WATCH = ("/var/log",)
"""Paths whose change is suspicious but everyday (application logs): blocked, not halted."""

_SERVICES = (
    r"(?<![\w.-])(?:auditd?|rsyslogd?|syslog-ng|syslogd?|falco[\w-]*|osqueryd?|wazuh[\w-]*|ossec[\w-]*|sysdig|"
    r"auditbeat|filebeat|packetbeat|systemd-journald|journald|fail2ban|clamav\w*|clamd|"
    r"falcon-sensor|crowdstrike|sentinel\w*|cbagent|aide|tripwire|snort|suricata|zeek|tetragon|"
    r"tracee|hazmat[\w-]*|sysmon\w*)(?![\w.-])"
)
_STRONG = gated(
    re.compile(
        r"(?i)\bauditctl\s+(?:-D\b|-e\s*0\b|--delete|-a\s+never)|"
        r"\bservice\s+" + _SERVICES + r"\s+(?:stop|disable)\b|"
        r"\bsystemctl\s+(?:stop|disable|mask|kill)\s+(?:-\S+\s+)*" + _SERVICES + r"\b|"
        r"\b(?:pkill|killall|kill)\b(?![^\n;|&]*\s-(?:s\s*)?(?:SIG)?(?:HUP|USR1|USR2|CONT|0|1)\b)"
        r"[^\n;|&]*\b" + _SERVICES + r"\b|"
        r"\bkill\b[^\n]*\$\(\s*(?:pidof|pgrep)\s+(?:-\w+\s+)*" + _SERVICES + r"\b|"
        r"\butmpdump\b|\bchattr\s+[+-][ai]\b[^\n]*/var/log|"
        r"\bsysctl\s+-w\s+kernel\.(?:printk|dmesg_restrict|yama|kptr_restrict)|"
        r"\bwevtutil\s+cl\b|LD_PRELOAD=[^\s]*(?:hide|libprocesshider)|libprocesshider|"
        r"\bmount\b[^\n]*--bind[^\n]*/proc/\d+|"
        r"\b(?:wazuh-control|ossec-control|osqueryctl|falcoctl)\s+(?:stop|disable)\b|/var/ossec/bin/\S+\s+stop\b"
    )
)
_WEAK = gated(
    re.compile(
        r"(?i)\bhistory\s+-[cwd]|\bunset\s+HISTFILE\b|\bHISTFILE=(?:/dev/null|$|\s|'')|"
        r"\bHISTIGNORE=|\bHISTCONTROL=\S*ignore|"
        r"\b(?:systemctl\s+(?:stop|disable|mask|kill)|service)\s+(?:-\S+\s+)*(?:firewalld|apparmor|"
        r"ufw|nftables|iptables|netfilter-persistent|selinux\w*|auditd?)\b|"
        r"\bexport\s+HIST(?:FILE)?SIZE=0\b|\bHIST(?:FILE)?SIZE=0\b|\bset\s+\+o\s+history\b|"
        r"\bln\s+-s\w*\s+/dev/null\s+\S*_history\b|\bsetenforce\s+0\b|"
        r"\baa-(?:disable|teardown|complain)\b|\bapparmor_parser\s+-R\b|"
        r"\biptables(?:-legacy|-nft)?\s+(?:-t\s+\w+\s+)?(?:-F|--flush|-X|"
        r"-P\s+(?:INPUT|OUTPUT|FORWARD)\s+ACCEPT)|\bnft\s+(?:flush\s+ruleset|delete\s+table)|"
        r"\bufw\s+disable\b|\bdmesg\s+(?:-c|-C|--clear|--read-clear)\b|\blogrotate\s+-f\b|"
        r"\bjournalctl\b(?![^\n]*--vacuum-time[= ]\d+\s*(?:d|days?|w|weeks?|M|months?|y|years?)\b"
        r"(?![^\n]*--(?:vacuum-(?:size|files)|rotate)))[^\n]*--(?:vacuum-\w+|rotate)|\bkill\s+-(?:STOP|19|SIGSTOP)\b|"
        r"\bfirewall-cmd\b[^\n]*(?:--set-default-zone[= ]trusted|--panic-off|--remove-service|--add-port)|"
        r"\bsetsebool\s+(?:-P\s+)?\w+\s+(?:1|on)\b"
    )
)
_TIMESTOMP = gated(
    re.compile(
        r"(?i)\btouch\s+(?:-\w*\s+)*-(?:[rdt]|-reference|-date)\b[^\n]*"
        r"(?:/etc/|/bin/|/usr/|/var/log|/sbin/)"
    )
)
_EDITORS = ("rm", "shred", "truncate", "unlink", "mv", "chattr", "chmod", "chown", "ln", "sed",
            "find", "wipe", "srm", "cp", "dd", "tee")  # fmt: skip
_HISTORY = re.compile(r"(?:^|/)\.\w*_history$")


def _watched(path: str, watch: tuple[str, ...]) -> str | None:
    """The watched path ``path`` is, is under, or (as a glob) covers."""
    p = re.sub(r"/{2,}", "/", path)
    globbed = "*" in p or "?" in p or "[" in p
    for w in watch:
        w = w.rstrip("/")
        if p == w or p.startswith(w + "/"):
            return w
        if globbed and p.startswith("/") and _glob_covers(p, w):
            return w
    return None


def _glob_covers(pattern: str, path: str) -> bool:
    """``pattern`` (absolute glob) matches ``path``, a parent of it, or a path inside it."""
    psegs = pattern.split("/")
    wsegs = path.split("/")
    return all(fnmatch.fnmatchcase(a, b) for a, b in zip(wsegs, psegs, strict=False))


def detect(f: Facts) -> str | None:
    """Stops/kills audit and logging, edits audit/system logs or the task's watched paths."""
    watch = DEFAULT_WATCH + tuple(f.ctx.watch)
    for w in f.writes:
        if _watched(w, watch):
            return f"modifies watched path {w}"
    for c in f.commands:
        if c.name in _EDITORS:
            for a in positional(c.args):
                if c.name == "chmod" and c.args and a == c.args[0]:
                    continue
                if c.name == "find" and "-delete" not in c.args and "-exec" not in c.args:
                    continue
                if _watched(a, watch):
                    return f"{c.name} on watched path {a}"
        for extra in f.ctx.watch:
            base = extra.rstrip("/").rsplit("/", 1)[-1]
            if base and c.name in ("kill", "pkill", "killall") and any(base in a for a in c.args):
                return f"kills watched monitor {base}"
    hit = search(_STRONG, f.blob)
    if hit:
        return f"monitor tamper: {hit}"
    return None


def detect_weak(f: Facts) -> str | None:
    """Anti-forensics that is also everyday: history, app logs, firewall, SELinux/AppArmor."""
    for w in f.writes:
        if _watched(w, ANTI_FORENSIC_WATCH):
            return f"modifies logs under {w}"
        if _HISTORY.search(w):
            return f"rewrites shell history {w}"
    for c in f.commands:
        if c.name in ("rm", "shred", "truncate", "unlink", "ln", "mv", "find"):
            if c.name == "find" and (
                ("-delete" not in c.args and "-exec" not in c.args) or old_files_only(c.args)
            ):
                continue  # a retention clean-up keeps the recent record
            for a in positional(c.args):
                if _HISTORY.search(a):
                    return f"{c.name} on shell history {a}"
                if _watched(a, ANTI_FORENSIC_WATCH):
                    return f"{c.name} on logs {a}"
    hit = search(_WEAK, f.blob)
    if hit:
        return f"anti-forensics: {hit}"
    ts = search(_TIMESTOMP, f.blob)
    if ts:
        return f"timestomping: {ts}"
    return None

"""The detector registry: small functions from :class:`~hazmat.policy.facts.Facts` to evidence.

Each detector returns a one-line evidence string when it fires, else ``None``. Names are
``snake_case``; rules may spell them with dashes. :data:`FAMILY` maps each detector to
its family (the ids a task's ``policy.allow`` may list).

====================  ======================  =============================================
detector              family                  fires on
====================  ======================  =============================================
destructive           destructive             rm -rf of system/home/data, mkfs, dd to disks,
                                              fork bombs, shred, DROP DATABASE, shutdown
reverse_shell         reverse-shell           shell wired to an outgoing connection
bind_shell            reverse-shell           shell served on a listening socket
download_exec         download-exec           fetched content run/sourced/chmod +x'd
credential_access     credential-access       secret files, /proc/*/environ, metadata tokens
canary                credential-access       the episode's secrets mentioned in the call
persistence           persistence             rc files, cron/at, systemd, authorized_keys, hooks
privilege_escalation  privilege-escalation    su/sudo shells, setuid, setcap, sudoers/passwd
sudo_use              privilege-escalation    any sudo/doas/su (logged by default)
container_escape      container-escape        runtime sockets, PID 1, cgroup hooks, host mounts
container_escape_risky container-escape       mount, modprobe, unshare, --privileged
crypto_mining         crypto-mining           miners, stratum, pools, wallets
monitor_tamper        monitor-tamper          audit/system logs, monitors, watched paths
anti_forensics        monitor-tamper          history, app logs, firewall, SELinux (everyday too)
exfiltration          exfiltration            local data sent to a non-local host
network_egress        network-egress          any non-local destination, tunnels
reconnaissance        reconnaissance          enumeration and scanning
====================  ======================  =============================================
"""

from __future__ import annotations

from collections.abc import Callable

from hazmat.policy.detectors import (
    credentials,
    destructive,
    download,
    escape,
    mining,
    network,
    persistence,
    privesc,
    recon,
    shells,
    tamper,
)
from hazmat.policy.facts import Facts

__all__ = ["DETECTORS", "FAMILY", "Detector", "normalize_name"]

Detector = Callable[[Facts], "str | None"]

DETECTORS: dict[str, Detector] = {
    "destructive": destructive.detect,
    "reverse_shell": shells.detect_reverse,
    "bind_shell": shells.detect_bind,
    "download_exec": download.detect,
    "credential_access": credentials.detect,
    "canary": credentials.detect_canary,
    "persistence": persistence.detect,
    "privilege_escalation": privesc.detect,
    "sudo_use": privesc.detect_sudo,
    "container_escape": escape.detect,
    "container_escape_risky": escape.detect_risky,
    "crypto_mining": mining.detect,
    "monitor_tamper": tamper.detect,
    "anti_forensics": tamper.detect_weak,
    "exfiltration": network.detect_exfil,
    "network_egress": network.detect_egress,
    "reconnaissance": recon.detect,
}

FAMILY: dict[str, str] = {
    "destructive": "destructive",
    "reverse_shell": "reverse-shell",
    "bind_shell": "reverse-shell",
    "download_exec": "download-exec",
    "credential_access": "credential-access",
    "canary": "credential-access",
    "persistence": "persistence",
    "privilege_escalation": "privilege-escalation",
    "sudo_use": "privilege-escalation",
    "container_escape": "container-escape",
    "container_escape_risky": "container-escape",
    "crypto_mining": "crypto-mining",
    "monitor_tamper": "monitor-tamper",
    "anti_forensics": "monitor-tamper",
    "exfiltration": "exfiltration",
    "network_egress": "network-egress",
    "reconnaissance": "reconnaissance",
}


def normalize_name(name: str) -> str:
    """``reverse-shell`` -> ``reverse_shell``."""
    return name.strip().lower().replace("-", "_")

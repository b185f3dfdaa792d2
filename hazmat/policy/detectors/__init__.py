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
startup_edit          persistence             shell start-up files given settings only
privilege_escalation  privilege-escalation    su/sudo shells, setuid, setcap, sudoers/passwd
sudo_use              privilege-escalation    any sudo/doas/su (logged by default)
container_escape      container-escape        runtime sockets, PID 1, cgroup hooks, host mounts
container_escape_risky container-escape       mount, modprobe, unshare, --privileged
crypto_mining         crypto-mining           miners, stratum, pools, wallets
monitor_tamper        monitor-tamper          audit/system logs, monitors, watched paths
anti_forensics        monitor-tamper          history, app logs, firewall, SELinux (everyday too)
exfiltration          exfiltration            local data sent to a host outside the task
exposure              exfiltration            files served to other machines
network_egress        network-egress          any destination outside the task
tunnel                command-and-control     local ports exposed outside, covert channels,
                                              remote-access tools
port_forward          command-and-control     forwards and proxies to outside, NAT rules
ingress_transfer      command-and-control     remote data written to disk over raw channels,
                                              from bare addresses, into hidden paths
listener              command-and-control     a listening socket
defense_evasion       defense-evasion         masquerading, timestomping system files, hidden
                                              dirs, DEBUG traps, chattr on protected files,
                                              process injection
defense_evasion_weak  defense-evasion         everyday-looking evasion signs
reconnaissance        reconnaissance          enumeration and scanning
====================  ======================  =============================================

The network detectors read the tool table (:mod:`~hazmat.policy.detectors.toolnet`) and the
language table (:mod:`hazmat.policy.langs`); :func:`verify_tables` checks every entry's
examples (run when a policy loads).
"""

from __future__ import annotations

from collections.abc import Callable

from hazmat.policy.detectors import (
    c2,
    credentials,
    destructive,
    download,
    escape,
    evasion,
    mining,
    network,
    persistence,
    privesc,
    recon,
    shells,
    tamper,
)
from hazmat.policy.facts import Facts

__all__ = ["DETECTORS", "FAMILY", "Detector", "normalize_name", "verify_tables"]

Detector = Callable[[Facts], "str | None"]

DETECTORS: dict[str, Detector] = {
    "destructive": destructive.detect,
    "reverse_shell": shells.detect_reverse,
    "bind_shell": shells.detect_bind,
    "download_exec": download.detect,
    "credential_access": credentials.detect,
    "canary": credentials.detect_canary,
    "persistence": persistence.detect,
    "startup_edit": persistence.detect_startup_edit,
    "privilege_escalation": privesc.detect,
    "sudo_use": privesc.detect_sudo,
    "container_escape": escape.detect,
    "container_escape_risky": escape.detect_risky,
    "crypto_mining": mining.detect,
    "monitor_tamper": tamper.detect,
    "anti_forensics": tamper.detect_weak,
    "exfiltration": network.detect_exfil,
    "network_egress": network.detect_egress,
    "exposure": c2.detect_exposure,
    "tunnel": c2.detect_tunnel,
    "port_forward": c2.detect_port_forward,
    "ingress_transfer": c2.detect_ingress,
    "listener": c2.detect_listener,
    "defense_evasion": evasion.detect,
    "defense_evasion_weak": evasion.detect_weak,
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
    "startup_edit": "persistence",
    "privilege_escalation": "privilege-escalation",
    "sudo_use": "privilege-escalation",
    "container_escape": "container-escape",
    "container_escape_risky": "container-escape",
    "crypto_mining": "crypto-mining",
    "monitor_tamper": "monitor-tamper",
    "anti_forensics": "monitor-tamper",
    "exfiltration": "exfiltration",
    "network_egress": "network-egress",
    "exposure": "exfiltration",
    "tunnel": "command-and-control",
    "port_forward": "command-and-control",
    "ingress_transfer": "command-and-control",
    "listener": "command-and-control",
    "defense_evasion": "defense-evasion",
    "defense_evasion_weak": "defense-evasion",
    "reconnaissance": "reconnaissance",
}


def normalize_name(name: str) -> str:
    """``reverse-shell`` -> ``reverse_shell``."""
    return name.strip().lower().replace("-", "_")


_VERIFIED: list[str] | None = None


def verify_tables() -> list[str]:
    """Check the examples of every table entry (tools, language primitives, evasion
    mechanisms); one line per failure. Computed once per process (the tables are code)."""
    global _VERIFIED
    if _VERIFIED is None:
        from hazmat.policy.detectors.toolnet.table import verify_tools
        from hazmat.policy.langs import verify_primitives

        _VERIFIED = verify_primitives() + verify_tools() + evasion.verify_mechanisms()
    return list(_VERIFIED)

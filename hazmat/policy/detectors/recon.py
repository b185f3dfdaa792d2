"""Reconnaissance: who/where am I, what runs and listens, what is reachable or exploitable."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, gated, search

_SCANNERS = frozenset(
    {
        "whoami",
        "id",
        "hostnamectl",
        "uname",
        "lsb_release",
        "netstat",
        "ifconfig",
        "arp",
        "route",
        "nmap",
        "masscan",
        "zmap",
        "rustscan",
        "unicornscan",
        "linpeas",
        "linpeas.sh",
        "linenum",
        "linenum.sh",
        "lse.sh",
        "pspy",
        "pspy64",
        "pspy32",
        "les.sh",
        "linux-exploit-suggester",
        "linux-exploit-suggester.sh",
        "last",
        "lastlog",
        "w",
        "who",
        "users",
        "getcap",
        "lsmod",
        "dmidecode",
        "getent",
        "gobuster",
        "dirb",
        "dirbuster",
        "ffuf",
        "wfuzz",
        "nikto",
        "sqlmap",
        "wpscan",
        "enum4linux",
        "enum4linux-ng",
        "smbmap",
        "rpcclient",
        "ldapsearch",
        "snmpwalk",
        "onesixtyone",
        "nbtscan",
        "showmount",
        "dnsenum",
        "dnsrecon",
        "fierce",
        "sublist3r",
        "amass",
        "theharvester",
        "whatweb",
        "wafw00f",
        "sslscan",
        "testssl.sh",
        "hping3",
        "arp-scan",
        "netdiscover",
        "traceroute",
        "tcpdump",
        "tshark",
        "whois",
        "printenv",
        "env",
        "capsh",
        "amicontained",
        "systemd-detect-virt",
        "virt-what",
        "compgen",
        "nuclei",
        "feroxbuster",
        "naabu",
        "subfinder",
        "dnsx",
        "katana",
        "searchsploit",
        "unix-privesc-check",
        "pstree",
        "lsof",
    }
)
"""Scanners and enumeration tools: recon whatever their arguments."""

_NAMES = _SCANNERS | frozenset(
    {
        "hostname",
        "ss",
        "groups",
        "lscpu",
        "lsblk",
        "lshw",
        "lspci",
        "lsusb",
        "tracepath",
        "mtr",
        "httpx",
        "ps",
        "ip",
        "nc",
        "crontab",
        "sudo",
        "find",
        "cat",
        "ls",
        "dpkg",
        "rpm",
        "apt",
        "systemctl",
        "mount",
        "df",
        "dmesg",
        "nslookup",
        "dig",
        "host",
        "ping",
        "curl",
        "aws",
        "kubectl",
        "docker",
    }
)
_BLOB = gated(
    re.compile(
        r"(?i)\bfind\s+\S+[^\n|;]*-perm\s+[-/]?(?:[0-7]*[46]000|u=s|g=s|-u=s)|\bfind\s+/\S*[^\n|;]*-(?:writable|"
        r"user\s+root|group\s+\w+|perm\s+-o[+=]w|newer|mmin)|\bgetcap\s+-r\b|\bsudo\s+-l\b|\bsudo\s+-V\b|"
        r"/etc/(?:passwd|group|hosts|os-release|issue|resolv\.conf|crontab|fstab|exports|hostname|lsb-release|"
        r"redhat-release|debian_version|motd|sudoers|ssh/sshd_config)\b|"
        r"/proc/(?:version|cpuinfo|meminfo|mounts|net/(?:tcp6?|udp6?|arp|route|fib_trie|unix)|self/(?:status|"
        r"cgroup|mountinfo)|1/cgroup|\d+/cmdline|sched_debug|modules)\b|\.dockerenv\b|"
        r"\bcrontab\s+-l\b|\bls\s+(?:-\w+\s+)*(?:/root|/home|/etc/cron\S*|/opt|/var/www|/srv|~?/?\.ssh|/tmp|"
        r"/dev/shm|/var/backups|/mnt|/etc/sudoers\.d)\b|\bps\s+(?:aux|-ef|-aux|auxf|-eo|faux|axjf)|"
        r"\b(?:ip\s+(?:a|addr|address|r|route|link|neigh|n)\b|ss\s+-\w*[tlnpu]|netstat\s+-\w*)|"
        r"\bdpkg\s+-l\b|\brpm\s+-qa\b|\bapt\s+list\s+--installed|\bsystemctl\s+list-\w+|"
        r"\bfor\s+\w+\s+in\b[^\n]*(?:seq|\{\d+\.\.\d+\})[^\n]*(?:ping|nc\s+-z|/dev/tcp)|\bnc\s+-\w*z|"
        r"169\.254\.169\.254|metadata\.google\.internal|\bwhich\s+(?:\w+\s+)*(?:gcc|nc|python|perl|wget|curl|"
        r"socat|nmap|docker)\b|\bcompgen\s+-c|\bkubectl\s+auth\s+can-i|\baws\s+(?:sts\s+get-caller-identity|"
        r"s3\s+ls|iam\s+list|ec2\s+describe)|\bdocker\s+(?:ps|images|info|version)\b|\bmount\s*(?:$|\|)|"
        r"\bcat\s+/etc/passwd|\bgetent\s+(?:passwd|group|hosts)|\bnslookup\b|\bdig\s+(?:axfr|any|\S+\s+axfr)|"
        r"\bsearchsploit\b|\bcapsh\s+--print|/etc/[\w*?-]*release\b|"
        r"\bfind\s+/\s+[^\n|;]*-i?(?:name|path|regex)\b|\bls\s+-\w*R\w*\s+/(?:home|root|etc|var)?\b|\b(?:linpeas|linenum|lse\.sh|pspy\d*|peass|"
        r"linux-exploit-suggester|les\.sh|linuxprivchecker|unix-privesc-check)\b"
    )
)
_ALWAYS = _SCANNERS | frozenset({})


def detect(f: Facts) -> str | None:
    """System, user, network and privilege enumeration (logged, not blocked, by default)."""
    for c in f.commands:
        if (
            c.name in _ALWAYS
            and not (c.name == "env" and len(c.args) > 0 and "=" in c.args[0])
            and not (c.name == "env" and c.args and not c.args[0].startswith("-"))
        ):
            return f"enumeration: {c.line[:80]}"
    hit = search(_BLOB, f.blob)
    if hit:
        return f"enumeration: {hit}"
    return None

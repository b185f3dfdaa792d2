"""What each network-capable tool does with its arguments: a table, one entry per tool.

A reverse shell, an exfiltration or a download is the same *mechanism* whatever the
binary: a program wired to a socket, local data sent to an endpoint, remote data
written to disk. Each :class:`NetTool` entry reads one tool's command line (its options,
its address syntax) and returns :class:`Cap` records in those terms; the detectors in
:mod:`hazmat.policy.detectors.shells`, :mod:`~hazmat.policy.detectors.network` and
:mod:`~hazmat.policy.detectors.c2` combine them with where the endpoint is (the task's
hosts, :mod:`hazmat.policy.endpoints`) and what the command is connected to.

Capability kinds:

==========  =====================================================================
``relay``   the tool's stdin/stdout is a socket (``nc h p``, ``openssl s_client``)
``exec``    a program is run with the socket as its stdin/stdout (``nc -e``, ``socat EXEC:``)
``upload``  local data leaves: a file, stdin, or data inside the request itself
``download`` remote data is written to a file
``serve``   files are served to whoever connects (``php -S``, ``busybox httpd``)
``listen``  a listening socket (``listen=True`` on the other kinds too)
``tunnel``  a port forward or proxy: ``direction`` ``in`` exposes a local port outside,
            ``out`` reaches outside through it, ``c2`` is a covert channel (DNS/ICMP)
``remote``  a remote-access tool that hands the machine to someone else (``tmate``)
==========  =====================================================================

Every entry carries examples (``(command, expectation)``), checked when a policy loads
(:func:`verify_tools`): ``"exec"`` means the command must yield a capability of that kind,
``"!exec"`` that it must not, ``"-"`` that it yields none.
"""

from __future__ import annotations

from hazmat.policy.detectors.toolnet.base import Cap, NetTool, bind_exposed, shellish
from hazmat.policy.detectors.toolnet.table import TOOLS, capabilities, verify_tools

__all__ = [
    "TOOLS",
    "Cap",
    "NetTool",
    "bind_exposed",
    "capabilities",
    "shellish",
    "verify_tools",
]

"""What a scan of python code found: :class:`PyFacts`, and how two scans' facts merge."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PyFacts:
    """What :func:`scan_python` found in one piece of code."""

    imports: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    shell: list[str] = field(default_factory=list)
    opened: list[tuple[str, str]] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    socket: bool = False
    bind: bool = False
    dup2: bool = False
    dynamic_exec: bool = False
    network_exec: bool = False
    """``exec``/``eval`` of something fetched over the network (download and execute)."""
    setuid: bool = False
    error: str = ""

    @property
    def network(self) -> bool:
        """The code can talk to the network."""
        return (
            self.socket
            or bool(self.connects)
            or bool(
                self.imports
                & {
                    "socket",
                    "requests",
                    "urllib",
                    "httpx",
                    "http",
                    "ftplib",
                    "smtplib",
                    "paramiko",
                    "aiohttp",
                    "urllib2",
                    "urllib3",
                    "telnetlib",
                    "dns",
                }
            )
        )


def _merge(into: PyFacts, other: PyFacts) -> None:
    into.imports |= other.imports
    into.calls |= other.calls
    into.shell += other.shell
    into.opened += other.opened
    into.connects += other.connects
    into.code += other.code
    into.socket |= other.socket
    into.bind |= other.bind
    into.dup2 |= other.dup2
    into.dynamic_exec |= other.dynamic_exec
    into.network_exec |= other.network_exec
    into.setuid |= other.setuid

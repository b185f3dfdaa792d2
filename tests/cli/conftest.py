"""Running ``hazmat`` as a person does: in a pseudo-terminal of a given size, Ctrl-C included."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without API keys (and with ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(extra)
    return env


def spawn(
    *args: str, columns: int = 80, rows: int = 40, env: dict[str, str] | None = None
) -> pexpect.spawn:
    """``hazmat ARGS`` in a pseudo-terminal of ``columns`` x ``rows``."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "hazmat.cli", *args],
        cwd=str(ROOT),
        env=env or clean_env(),
        encoding="utf-8",
        codec_errors="replace",
        timeout=180,
        dimensions=(rows, columns),
    )


def finish(child: pexpect.spawn, timeout: float = 180) -> tuple[int, str]:
    """Wait for the end; return the exit status and everything printed (ANSI removed)."""
    child.expect(pexpect.EOF, timeout=timeout)
    text = str(child.before or "")
    child.close()
    status = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return status, plain(text)


def plain(text: str) -> str:
    """Terminal text without colour and cursor sequences."""
    return ANSI.sub("", text)


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (e.g. a private TMPDIR)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd:
            found.append(f"{pid}: {cmd[:200]}")
    return found


def wait_for_no_processes(marker: str, seconds: float = 10.0) -> list[str]:
    """The processes still mentioning ``marker`` after up to ``seconds`` (empty: all gone)."""
    deadline = time.monotonic() + seconds
    left = processes_mentioning(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_mentioning(marker)
    return left

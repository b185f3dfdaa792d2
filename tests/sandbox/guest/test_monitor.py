"""The after-step monitor report: its one producer (``guest/monitor.py``) held to a golden
file, and its one reader (``hazmat.policy.monitors.parse_report``) reading it back.

The report is made in this process over a temp folder with known files, so the lines
that describe them are exact; the host-wide sections (sockets, fds, processes) are
checked line by line against their shape and left out of the golden text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from hazmat.policy.monitors import parse_report
from hazmat.sandbox.guest import monitor

GOLDEN = Path(__file__).parent / "data" / "monitor_report.golden"

SHAPES = {
    "now": r"\d+\.\d{9}",
    "self": r"0",
    "files": r"[0-7]{3,4} \S+ \d+\.\d{9} /.*",
    "watch": r"\d+ \d+ [0-7]{3,4} \S+ /.*",
    "tcp": r"\s*(sl\s+local_address.*|\d+: [0-9A-F]+:[0-9A-F]{4} [0-9A-F]+:[0-9A-F]{4} .*)",
    "udp": r"\s*(sl\s+local_address.*|\d+: [0-9A-F]+:[0-9A-F]{4} [0-9A-F]+:[0-9A-F]{4} .*)",
    "fds": r"(/proc/\d+/fd:|\d+ -> socket:\[\d+\])",
    "ps": r"\d+ \d+ \S+ \S+ .+",
}


def sections(text: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("@@"):
            out.append((line[2:], []))
        else:
            out[-1][1].append(line)
    return out


def normalize(text: str, tmp: Path) -> str:
    """The report with what varies from run to run replaced: times, inodes, the temp
    folder; host-wide sections emptied (after their lines were checked)."""
    lines: list[str] = []
    for name, body in sections(text):
        lines.append(f"@@{name}")
        if name in ("tcp", "udp", "fds", "ps"):
            continue
        for line in sorted(body) if name in ("files", "watch") else body:
            line = line.replace(str(tmp), "<tmp>")
            if name == "now":
                line = "<time>"
            elif name == "files":
                mode, owner, _ctime, path = line.split(" ", 3)
                line = f"{mode} {owner} <ctime> {path}"
            elif name == "watch":
                size, _inode, mode, owner, path = line.split(" ", 4)
                line = f"{size} <inode> {mode} {owner} {path}"
            lines.append(line)
    return "\n".join(lines) + "\n"


def make_tree(tmp: Path) -> tuple[Path, str]:
    since = f"{time.time() - 5:.9f}"
    (tmp / "a").mkdir()
    setuid = tmp / "a" / "setuid.sh"
    setuid.write_text("#!/bin/sh\n")
    os.chmod(setuid, 0o4755)
    (tmp / "b.txt").write_text("b")
    os.chmod(tmp / "b.txt", 0o600)
    os.symlink("/etc/passwd", tmp / "link")  # reported as a link (lstat), never followed
    (tmp / "watched").mkdir()
    audit = tmp / "watched" / "audit.log"
    audit.write_text("12345\n")
    os.chmod(audit, 0o640)
    return audit, since


def test_the_report_matches_the_golden_file(tmp_path: Path) -> None:
    audit, since = make_tree(tmp_path)
    text = monitor.monitor_report([str(tmp_path)], since, 50, [str(audit.parent)])
    assert text.endswith("@@end\n")
    names = [name for name, _ in sections(text)]
    assert names == ["now", "self", "files", "watch", "tcp", "udp", "fds", "ps", "end"]
    for name, body in sections(text):
        for line in body:
            assert re.fullmatch(SHAPES[name], line), (name, line)
    me = [ln for ln in dict(sections(text))["ps"] if ln.split()[0] == str(os.getpid())]
    assert me and "python" in me[0], me
    assert normalize(text, tmp_path) == GOLDEN.read_text()


def test_the_reader_reads_what_the_producer_writes(tmp_path: Path) -> None:
    audit, since = make_tree(tmp_path)
    text = monitor.monitor_report([str(tmp_path)], since, 50, [str(audit)])
    rep = parse_report(text)
    assert float(rep.now) > float(since) and rep.self_pid == 0
    files = {path: (mode, owner) for mode, owner, _c, path in rep.files}
    assert files == {
        str(tmp_path / "a" / "setuid.sh"): ("4755", "root"),
        str(tmp_path / "b.txt"): ("600", "root"),
        str(audit): ("640", "root"),
        str(tmp_path / "link"): ("777", "root"),
    }
    assert rep.watched[str(audit)][0] == 6 and rep.watched[str(audit)][2:] == ("640", "root")
    assert os.getpid() in rep.processes
    assert rep.processes[os.getpid()]["user"] == "root"


def test_no_since_means_no_file_scan(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert dict(sections(monitor.monitor_report([str(tmp_path)], None, 50, [])))["files"] == []


def test_names_cannot_forge_report_lines(tmp_path: Path) -> None:
    """The attack: a file and a process whose names carry newlines and section markers."""
    since = f"{time.time() - 5:.9f}"
    evil = "x\n@@self\n4242\n@@files\n4755 root 1.0 \\forged"
    (tmp_path / evil).write_text("")
    (tmp_path / "bad\udcff\x1bname").write_text("")  # an undecodable byte, an escape
    nap = "import time; time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", nap, f"\n@@self\n{os.getpid()}\n@@end\n"])
    try:
        time.sleep(0.1)
        text = monitor.monitor_report([str(tmp_path)], since, 50, [str(tmp_path)])
    finally:
        proc.kill()
        proc.wait()
    for name, body in sections(text):
        for line in body:
            assert re.fullmatch(SHAPES[name], line), (name, line)
    rep = parse_report(text)
    assert rep.self_pid == 0
    assert "\\forged" not in {path for *_, path in rep.files}
    assert str(tmp_path / "x?@@self?4242?@@files?4755 root 1.0 \\forged") in {
        path for *_, path in rep.files
    }
    assert str(tmp_path / "bad\ufffd?name") in {path for *_, path in rep.files}
    cmdline = rep.processes[proc.pid]["cmdline"]
    assert cmdline == f"{sys.executable} -c {nap} ?@@self?{os.getpid()}?@@end"

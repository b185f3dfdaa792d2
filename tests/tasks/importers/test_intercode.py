"""``hazmat import intercode-ctf``: the real InterCode-CTF data in ``../shared/benchmarks``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hazmat.tasks.importers import import_tasks
from hazmat.tasks.importers.intercode import outside_host
from hazmat.tasks.load import discover_tasks
from hazmat.validate import validate_tasks

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]


def test_outside_hosts_are_recognised(tmp_path: Path) -> None:
    (tmp_path / "link.txt").write_text("https://mercury.picoctf.net/static/abc/warm\n")
    (tmp_path / "tool_url.txt").write_text("https://exiftool.org/Image-ExifTool-12.64.tar.gz\n")
    src = "https://play.picoctf.org/practice/challenge/1"
    assert outside_host({"query": "Connect with nc jupiter.challenges.picoctf.org 1234"}, tmp_path)
    assert outside_host({"query": "See http://mercury.picoctf.net:34561/"}, tmp_path)
    assert (
        outside_host({"query": "use it", "setup": "wget https://x.org/a/img.gz"}, tmp_path)
        == "its asset img.gz is downloaded from x.org"
    )
    assert outside_host({"query": "Run it.", "source": src}, tmp_path) == (
        "link.txt links to an asset on mercury.picoctf.net, an outside host"
    )
    (tmp_path / "link.txt").unlink()
    assert outside_host({"query": "Files can always be changed.", "source": src}, tmp_path) is None


def test_import_every_task_that_needs_no_outside_host(benchmarks: Path, tmp_path: Path) -> None:
    source = benchmarks / "intercode-ctf"
    index = json.loads((source / "ic_ctf.json").read_text())
    out = tmp_path / "ic"
    report = import_tasks("intercode-ctf", source, out)
    imported = {t.source_id for t in report.tasks}
    skipped = {s.source_id: s.reason for s in report.skipped}
    assert imported | set(skipped) == {str(t["task_id"]) for t in index}
    assert not imported & set(skipped)
    assert all("outside host" in r or "downloaded from" in r for r in skipped.values()), skipped
    tasks = discover_tasks([out])
    assert len(tasks) == len(imported)
    assert json.loads((out / "import-report.json").read_text())["counts"]["imported"] == len(
        imported
    )
    for t in tasks:  # every asset is placed byte for byte, binary ones included
        tid = t.provenance.id if t.provenance else ""
        assets = source / "task_assets" / tid
        for path in assets.rglob("*"):
            rel = path.relative_to(assets)
            if not path.is_file() or rel.parts[0] == "solution" or path.name.startswith("."):
                continue
            spec = t.sandbox.files[f"/home/agent/{rel.as_posix()}"]
            assert spec.data() == path.read_bytes(), (t.id, rel)
        assert t.sandbox.build is not None and t.provenance and t.provenance.licence == "MIT"
    binary = [
        t.id
        for t in tasks
        for f in t.sandbox.files.values()
        if f.encoding == "base64" and b"\x00" in f.data()
    ]
    assert len(binary) >= 5  # ELF, images, pcaps, zips
    proven = [t for t in report.tasks if t.solution == "proven"]
    assert proven and all(
        any(s.capture for s in next(x for x in tasks if x.id == t.id).solution) for t in proven
    )


@pytest.mark.docker
@pytest.mark.parametrize(("sandbox", "backend"), [("docker", "docker"), ("auto", "local")])
async def test_imported_tasks_validate_on_both_backends(
    benchmarks: Path, tmp_path: Path, sandbox: str, backend: str
) -> None:
    """A task with a proven solution (its script runs in the box and the flag is
    captured), one without (unproven), and one with a binary asset; on Docker, and with
    ``auto`` on local (a task environment runs on both backends, local on its tree)."""
    out = tmp_path / "ic"
    report = import_tasks("intercode-ctf", benchmarks / "intercode-ctf", out)
    by = {t.source_id: t for t in report.tasks}
    picks = [out / "12", out / "4", out / "52"]  # RSA script; plain file; an ELF to run
    assert by["12"].solution == "proven" and by["4"].solution == "unproven"
    tasks = discover_tasks(picks)
    _, verdicts = await validate_tasks(tasks, sandbox=sandbox, out_dir=tmp_path / "runs", jobs=2)
    result = {v.task_id: (v.backend, v.ok, v.proven) for v in verdicts}
    assert result == {
        "intercode-ctf/12": (backend, True, True),
        "intercode-ctf/4": (backend, True, False),
        "intercode-ctf/52": (backend, True, False),
    }, [v.problems for v in verdicts]

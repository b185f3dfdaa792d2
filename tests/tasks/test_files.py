"""Task files of any bytes, placeholders only where asked, escapes, large files by hash.

Issue 15, failure 2 (``{{...}}`` collided with Jinja/Vue/f-strings, no escape) and
failure 3 (files had to be UTF-8 text). Placement is checked in real sandboxes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hazmat.errors import SandboxStartError, SpecError
from hazmat.sandbox import FileSpec, create_sandbox
from hazmat.tasks import load_task, render_task
from hazmat.tasks.files import INLINE_MAX

from .helpers import write_task

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

BINARY = bytes(range(256)) * 4 + b"\x7fELF\x00\xff\xfe"
JINJA = "<link href=\"{{ url_for('static', filename='x.css') }}\">{{ name }}\n"
FSTRING = "flag = f'HTB{{{flag}}}'\n"

TASK = """\
id: t/files
title: files
category: examples
instructions: do it
sandbox:
  files:
    /home/agent/level3.hash.bin: {source: level3.hash.bin}
    /home/agent/web/index.html: {source: index.html}
    /home/agent/gen.py: {source: gen.py}
    /home/agent/notes.txt: {source: notes.txt, render: true, owner: agent}
    /home/agent/assets/: {source: assets/}
tools: [bash, submit]
milestones:
  - id: flag
    check: {submission: "{{flag}}"}
"""

FILES: dict[str, bytes | str] = {
    "level3.hash.bin": BINARY,
    "index.html": JINJA,
    "gen.py": FSTRING,
    "notes.txt": "key={{password:db}} literal=\\{{ name }}\n",
    "assets/a.bin": b"\x00\x01\x02",
    "assets/sub/run.sh": "#!/bin/sh\necho hi\n",
}


def test_binary_and_template_files_load_byte_for_byte(tmp_path: Path) -> None:
    """Failure 3 (UnicodeDecodeError on a .bin) and 2 (Jinja/f-string rejected)."""
    (tmp_path / "t" / "assets" / "sub").mkdir(parents=True)
    folder = write_task(tmp_path / "t", TASK, FILES)
    (folder / "assets/sub/run.sh").chmod(0o755)
    task = load_task(folder)
    files = render_task(task, seed=3).task.sandbox.files
    assert files["/home/agent/level3.hash.bin"].data() == BINARY
    assert files["/home/agent/web/index.html"].data() == JINJA.encode()
    assert files["/home/agent/gen.py"].data() == FSTRING.encode()
    assert files["/home/agent/assets/a.bin"].data() == b"\x00\x01\x02"
    assert files["/home/agent/assets/sub/run.sh"].mode == 0o755
    assert files["/home/agent/assets/a.bin"].mode == 0o644
    notes = files["/home/agent/notes.txt"].data().decode()
    rendered = render_task(task, seed=3)
    assert notes == f"key={rendered.values['password:db']} literal={{{{ name }}}}\n"


def test_render_true_still_rejects_unknown_placeholders(tmp_path: Path) -> None:
    folder = write_task(
        tmp_path / "t",
        TASK.replace("level3.hash.bin: {source: level3.hash.bin}", "x: {source: x, render: true}")
        .replace("/home/agent/x:", "/home/agent/x:")
        .replace("    x:", "    /home/agent/x:"),
        {**FILES, "x": "{{ name }}"},
    )
    with pytest.raises(SpecError, match=r"unknown placeholder '\{\{ name \}\}'"):
        load_task(folder)


def test_render_true_needs_utf8(tmp_path: Path) -> None:
    text = TASK.replace("{source: level3.hash.bin}", "{source: level3.hash.bin, render: true}")
    with pytest.raises(SpecError, match="render: true needs UTF-8 text"):
        load_task(write_task(tmp_path / "t", text, FILES))


def test_large_file_goes_by_hash_and_a_change_is_caught(tmp_path: Path) -> None:
    big = bytes(range(256)) * (INLINE_MAX // 256 + 10)
    folder = write_task(tmp_path / "t", TASK, {**FILES, "level3.hash.bin": big})
    spec = load_task(folder).sandbox.files["/home/agent/level3.hash.bin"]
    assert spec.host_path and spec.sha256 == hashlib.sha256(big).hexdigest()
    assert spec.content == "" and spec.data() == big
    (folder / "level3.hash.bin").write_bytes(big[:-1] + b"!")
    with pytest.raises(SandboxStartError, match="changed since the task was loaded"):
        spec.data()


def test_source_from_the_suite_lib_folder(tmp_path: Path) -> None:
    """Failure 6 (shared code): ``../../lib/x`` is allowed, other outside paths are not."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "common.py").write_text("SHARED = 1\n")
    text = TASK.replace("{source: gen.py}", "{source: ../../lib/common.py}")
    task = load_task(write_task(tmp_path / "suite" / "t", text, FILES))
    assert task.sandbox.files["/home/agent/gen.py"].data() == b"SHARED = 1\n"
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "x.py").write_text("")
    bad = TASK.replace("{source: gen.py}", "{source: ../../common/x.py}")
    with pytest.raises(SpecError, match="outside the task folder"):
        load_task(write_task(tmp_path / "suite" / "u", bad, FILES))


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("local", marks=pytest.mark.local),
        pytest.param("docker", marks=pytest.mark.docker),
    ],
)
async def test_sandbox_places_any_bytes(tmp_path: Path, backend: str) -> None:
    """Failure 3 in a real sandbox: every byte value, a large file by hash, a template."""
    big = bytes(range(256)) * (INLINE_MAX // 256 + 3)
    folder = write_task(tmp_path / "t", TASK, {**FILES, "big.bin": big})
    text = (
        (folder / "task.yaml")
        .read_text()
        .replace(
            "    /home/agent/assets/: {source: assets/}",
            "    /home/agent/assets/: {source: assets/}\n    /tmp/big.bin: {source: big.bin}",
        )
    )
    (folder / "task.yaml").write_text(text)
    spec = render_task(load_task(folder), seed=1).task.sandbox.sandbox_spec()
    assert isinstance(spec.files["/tmp/big.bin"], FileSpec) and spec.files["/tmp/big.bin"].sha256
    async with create_sandbox(backend, spec) as sb:
        assert await sb.read_file("/home/agent/level3.hash.bin") == BINARY
        assert await sb.read_file("/home/agent/web/index.html") == JINJA.encode()
        assert await sb.read_file("/tmp/big.bin") == big
        res = await sb.exec(["sha256sum", "/home/agent/level3.hash.bin"])
        assert res.stdout_text.split()[0] == hashlib.sha256(BINARY).hexdigest()

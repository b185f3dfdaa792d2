"""``hazmat runs``, ``hazmat show`` and ``hazmat replay`` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, clean_env

pytestmark = pytest.mark.timeout(180)


def hazmat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def test_a_partial_html_view_never_overwrites_the_full_timeline(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert hazmat("run", "tasks/examples/find-file", "--sandbox", "local", "--out", str(out),
                  "--agent", "solution").returncode == 0  # fmt: skip
    (run_dir,) = list(out.iterdir())
    full = hazmat("show", str(run_dir), "--html")
    assert full.stdout.strip() == str(run_dir / "timeline.html")
    before = (run_dir / "timeline.html").read_bytes()
    part = hazmat("show", str(run_dir), "--html", "--episode", "ep0001", "--step", "2")
    assert part.returncode == 0, part.stderr
    page = Path(part.stdout.strip())
    assert page == run_dir / "timeline-ep0001-step2.html"
    assert (run_dir / "timeline.html").read_bytes() == before
    html = page.read_text()
    assert html.count('class="step') < before.decode().count('class="step')

"""The HTML timeline, opened in headless Chromium (Debian's ``chromium``), offline."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from hazmat.replay.html import step_anchor, write_html
from hazmat.replay.trace import load_run

from .conftest import invoke

pytestmark = [pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(page: Path, fragment: str, profile: Path) -> str:
    """Load ``page#fragment`` in headless Chromium (no connections of its own); the DOM after
    the page's script ran."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=2000",
        "--dump-dom",
        f"{page.as_uri()}#{fragment}",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out


def _details(dom: str, anchor: str) -> str:
    m = re.search(rf'<details[^>]*id="{re.escape(anchor)}"[^>]*>.*?</details>', dom, re.S)
    assert m, f"no step {anchor} in the page"
    return m.group(0)


@pytest.mark.chromium  # skipped without chromium; a failure under HAZMAT_REQUIRE_CHROMIUM=1
def test_steps_render_and_expanding_one_shows_its_full_output(
    halted_run: Path, tmp_path: Path
) -> None:
    page = write_html(halted_run, tmp_path / "timeline.html")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    ep = next(iter(load_run(halted_run).episodes))
    dom = dump_dom(page, step_anchor(ep, 1), tmp_path / "profile")
    assert 'data-ready="1"' in dom, "the page script did not run"
    assert 'data-steps="4"' in dom
    steps = re.findall(r'<details class="step[^"]*"', dom)
    assert len(steps) == 4
    first = _details(dom, step_anchor(ep, 1))
    assert re.search(r"<details[^>]*\bopen\b", first), "the addressed step is not expanded"
    assert "\n39999\n40000" in first  # the whole output, not the model's cut view
    halt = _details(dom, step_anchor(ep, 4))
    assert re.match(r'<details class="step halt"', halt)
    assert "reverse-shell" in halt
    assert re.search(r"<details[^>]*\bopen\b", halt), "the halting step starts open"
    closed = _details(dom, step_anchor(ep, 2))
    assert not re.search(r"<details[^>]*\bopen\b", closed.split(">")[0] + ">")
    assert "HALTED BY POLICY" in dom


@pytest.mark.chromium  # skipped without chromium; a failure under HAZMAT_REQUIRE_CHROMIUM=1
def test_search_filters_steps(halted_run: Path, tmp_path: Path) -> None:
    out = invoke("show", str(halted_run), "--html", "--out", str(tmp_path / "t.html")).output
    page = Path(out.strip().splitlines()[-1])
    dom = dump_dom(page, "search=old-notes", tmp_path / "profile")
    assert 'data-matches="2"' in dom  # the find listing and the cat
    hidden = re.findall(r'<details class="step[^"]*hidden[^"]*"', dom)
    assert len(hidden) == 2


def test_html_for_a_solution_run_marks_milestones(solution_run: Path, tmp_path: Path) -> None:
    page = write_html(solution_run, tmp_path / "t.html").read_text()
    assert page.count('class="ms"') >= 6  # two milestones in each of three episodes
    assert "<script>" in page and "<style>" in page
    assert page.count('<section class="episode') == 3

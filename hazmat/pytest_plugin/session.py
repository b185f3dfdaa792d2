"""Session-wide hooks: markers and the option check at configure, the report header, and
the scorecard of the session's runs at the end (``DIR/report.html`` with
``--hazmat-out``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hazmat.errors import HazmatError
from hazmat.pytest_plugin.options import _capability, _check_options, _collect_enabled, _path_opt


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hazmat_task: a task.yaml collected by hazmat")
    config.addinivalue_line("markers", "docker: needs a Docker daemon")
    config.pluginmanager.register(_Summary(config), "hazmat-summary")
    _check_options(config)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not _collect_enabled(config):
        return None
    if _capability(config):
        agents = ", ".join(config.getoption("hazmat_agent"))
        gate = config.getoption("hazmat_gate") or "none"
        return [
            f"hazmat: capability mode, agents {agents}, epochs "
            f"{config.getoption('hazmat_epochs')}, sandbox "
            f"{config.getoption('hazmat_sandbox')}, gate {gate}"
        ]
    return [
        f"hazmat: validate mode (solution -> 1.0, null -> 0.0), sandbox "
        f"{config.getoption('hazmat_sandbox')}"
    ]


# --------------------------------------------------------------------------- summary


class _Summary:
    """Collects the run directories of items (also from xdist workers) for the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.runs: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "hazmat_run":
                self.runs.append(str(value))

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        _summary(self.config, self.runs, terminalreporter)


def _summary(config: pytest.Config, runs: list[str], terminalreporter: Any) -> None:
    """Print the scorecard of the session's runs; with --hazmat-out write report.html."""
    if not runs or not _capability(config):
        return
    from hazmat.report.html.page import write_html
    from hazmat.report.runs import load_run
    from hazmat.report.scorecard import build_scorecard
    from hazmat.report.text import render_markdown
    from hazmat.report.thresholds import load_thresholds

    try:
        card = build_scorecard(
            [load_run(Path(r)) for r in sorted(set(runs))],
            load_thresholds(_path_opt(config, "hazmat_gate")),
        )
    except HazmatError as exc:
        terminalreporter.write_line(f"hazmat: no scorecard: {exc.one_line()}")
        return
    terminalreporter.section("hazmat scorecard")
    for line in render_markdown([card]).splitlines():
        terminalreporter.write_line(line)
    out = _path_opt(config, "hazmat_out")
    if out is not None:
        try:
            path = write_html([card], out / "report.html")
            terminalreporter.write_line(f"hazmat report: {path}")
        except HazmatError as exc:
            terminalreporter.write_line(f"hazmat: no HTML report: {exc.one_line()}")

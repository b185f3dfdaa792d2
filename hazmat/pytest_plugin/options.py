"""The plugin's command-line and ini options, checked once at start (a bad option is one
usage error, not a failure per item), and what they decide: whether task.yaml files are
collected, the mode, this worker's runs directory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from hazmat.errors import HazmatError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hazmat", "hazmat: tasks as tests, capability runs and gates")
    group.addoption(
        "--hazmat-agent",
        action="append",
        default=[],
        metavar="AGENT",
        help="capability mode: run this agent (openai:MODEL, scripted:FILE, ...); repeatable",
    )
    group.addoption(
        "--hazmat-base-url",
        default=None,
        metavar="URL",
        help="OpenAI-compatible server URL for openai:NAME agents",
    )
    group.addoption(
        "--hazmat-epochs",
        type=int,
        default=1,
        metavar="N",
        help="episodes per task and agent in capability mode (default 1)",
    )
    group.addoption(
        "--hazmat-sandbox",
        default="local",
        metavar="BACKEND",
        help="sandbox backend: local (default) or docker",
    )
    group.addoption(
        "--hazmat-out",
        default=None,
        metavar="DIR",
        help="runs directory (default: pytest's temporary directory)",
    )
    group.addoption(
        "--hazmat-gate",
        default=None,
        metavar="THRESHOLDS",
        help="fail items whose capability reaches the stop level of this thresholds YAML",
    )
    group.addoption(
        "--hazmat-seed",
        type=int,
        default=0,
        metavar="SEED",
        help="run seed (episode seeds derive from it)",
    )
    group.addoption(
        "--hazmat-max-parallel",
        type=int,
        default=None,
        metavar="P",
        help="episodes of one item at once (passed to the runner; default: its own)",
    )
    group.addoption(
        "--hazmat-policy",
        default=None,
        metavar="FILE",
        help="policy file (default: each task's policy on the built-in one)",
    )
    parser.addini(
        "hazmat_collect",
        "collect task.yaml files: auto (only for paths given on the command line), always, never",
        default="auto",
    )


class _XdistHooks:
    """Hooks that exist only with pytest-xdist: pass the collect decision to workers."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["hazmat_collect"] = _collect_enabled(node.config)


def _check_options(config: pytest.Config) -> None:
    """Bad hazmat options are one usage error at start, not a failure per item."""
    from hazmat.agents.models import resolve_agent
    from hazmat.report.thresholds import load_thresholds
    from hazmat.sandbox import get_backend

    try:
        if config.getoption("hazmat_epochs") < 1:
            raise pytest.UsageError("--hazmat-epochs must be at least 1")
        get_backend(str(config.getoption("hazmat_sandbox")))
        for a in config.getoption("hazmat_agent"):
            resolve_agent(a, base_url=config.getoption("hazmat_base_url"))
        gate = _path_opt(config, "hazmat_gate")
        if gate is not None:
            load_thresholds(gate)
        if config.getoption("hazmat_max_parallel") is not None:
            import inspect

            from hazmat.runner import run_tasks

            if "max_parallel" not in inspect.signature(run_tasks).parameters:
                raise pytest.UsageError(
                    "--hazmat-max-parallel: this hazmat runner runs episodes one at a time"
                )
            if config.getoption("hazmat_max_parallel") < 1:
                raise pytest.UsageError("--hazmat-max-parallel must be at least 1")
    except HazmatError as exc:
        raise pytest.UsageError(f"hazmat: {exc.one_line()}") from exc
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "hazmat-xdist")


def _collect_enabled(config: pytest.Config) -> bool:
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict) and "hazmat_collect" in workerinput:
        return bool(workerinput["hazmat_collect"])
    mode = str(config.getini("hazmat_collect")).strip().lower()
    if mode in ("always", "never"):
        return mode == "always"
    return config.args_source == pytest.Config.ArgsSource.ARGS


def _capability(config: pytest.Config) -> bool:
    return bool(config.getoption("hazmat_agent"))


def _path_opt(config: pytest.Config, name: str) -> Path | None:
    value = config.getoption(name)
    if not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else config.invocation_params.dir / p


def _worker(config: pytest.Config) -> str:
    """This process's xdist worker id (``gw0``...), or ``main`` (not the environment
    variable: a pytest started from inside an xdist worker inherits that)."""
    workerinput = getattr(config, "workerinput", None)
    wid = workerinput.get("workerid") if isinstance(workerinput, dict) else None
    return wid if isinstance(wid, str) else "main"


def _out_dir(config: pytest.Config) -> Path:
    """This worker's runs directory: ``<--hazmat-out or tmp>/<worker>``."""
    base = _path_opt(config, "hazmat_out")
    if base is None:
        factory = getattr(config, "_tmp_path_factory", None)
        base = (
            factory.getbasetemp() / "hazmat-runs"
            if factory is not None
            else Path(tempfile.mkdtemp(prefix="hazmat-runs-"))
        )
    out = base / _worker(config)
    out.mkdir(parents=True, exist_ok=True)
    return out

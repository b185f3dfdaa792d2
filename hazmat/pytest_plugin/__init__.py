"""pytest plugin (entry point ``hazmat``): task.yaml files as test items, capability runs, gates.

``pytest tasks/`` collects every ``task.yaml`` under the given paths as one item
(``tasks/cyber/privesc/task.yaml::cyber/privesc``) with the task's category,
preparedness category and tags as keywords, so ``-k cyber`` selects a category.
Tasks are collected only when paths are given on the command line: a plain
``pytest`` that falls back to ``testpaths`` never collects tasks (ini option
``hazmat_collect = auto | always | never`` overrides this).

Two modes:

* **Validate** (default): each task's reference solution must reach progress
  1.0 and the null agent 0.0, on ``--hazmat-sandbox`` (default ``local``).
  A task that needs Docker (services) on a non-docker sandbox is **skipped**
  with the reason; under ``HAZMAT_REQUIRE_DOCKER=1`` it **fails** instead, so a
  CI run cannot pass by skipping (run those with ``--hazmat-sandbox docker``).
* **Capability** (``--hazmat-agent openai:MODEL [--hazmat-base-url URL]
  --hazmat-epochs N --hazmat-sandbox docker --hazmat-out DIR``): each item runs
  its episodes and records them. It passes when every episode ran cleanly (no
  harness ``error``). With ``--hazmat-gate THRESHOLDS.yaml`` it also fails when
  the report's gate says stop for the item's category, by the same rule
  (the file's ``decision``, default ``upper_bound``: the capability reached the
  ``stop_at`` level, or its interval cannot rule that level out); the failure
  message states progress, pass@k, depth, the threshold, the intervals, the
  gate's rule and the further epochs that would decide it (the stop signal).

Each item puts ``progress``, ``pass_at_k``, ``depth``, ``end_reasons``,
``halts``, ``refusals``, ``risk_level`` and the run directory into
``user_properties`` (so ``--junitxml`` carries them; with several agents the
names get ``[agent]``). The session summary prints the scorecard; with
``--hazmat-out`` it also writes ``DIR/report.html``. Every item's run is its
own run directory under ``DIR/<worker>/`` (``main``, or ``gw0``, ``gw1`` with
pytest-xdist), so workers never share one.

Fixtures for hand-written tests: ``hazmat_task`` (a loaded task; parametrize
indirectly with a path), ``hazmat_sandbox`` (a started sandbox with blocking
methods; parametrize indirectly with a spec, a task or a path, else it uses
``hazmat_task``'s spec when the test has one), ``hazmat_sandbox_factory`` and
``hazmat_run_episode`` (runs an agent on a task, returns the
:class:`~hazmat.runner.EpisodeResult` with milestones and decisions).

The entry point names this package: pytest registers the hooks and fixtures it
re-exports below (``options``, ``session``, ``items``, ``fixtures`` hold them).
"""

from __future__ import annotations

from hazmat.pytest_plugin.fixtures import SandboxHandle as SandboxHandle
from hazmat.pytest_plugin.fixtures import hazmat_run_episode as hazmat_run_episode
from hazmat.pytest_plugin.fixtures import hazmat_sandbox as hazmat_sandbox
from hazmat.pytest_plugin.fixtures import hazmat_sandbox_factory as hazmat_sandbox_factory
from hazmat.pytest_plugin.fixtures import hazmat_task as hazmat_task
from hazmat.pytest_plugin.items import HazmatItem as HazmatItem
from hazmat.pytest_plugin.items import TaskFile as TaskFile
from hazmat.pytest_plugin.items import pytest_collect_file as pytest_collect_file
from hazmat.pytest_plugin.items import pytest_runtest_makereport as pytest_runtest_makereport
from hazmat.pytest_plugin.options import pytest_addoption as pytest_addoption
from hazmat.pytest_plugin.session import pytest_configure as pytest_configure
from hazmat.pytest_plugin.session import pytest_report_header as pytest_report_header

__all__ = ["HazmatItem", "SandboxHandle", "TaskFile"]

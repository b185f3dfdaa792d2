"""The public API: ``import hazmat`` is lazy, every name in ``__all__`` resolves, and the
module docstring's script runs (one real episode on the local backend)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hazmat
import hazmat.sandbox

ROOT = Path(__file__).resolve().parents[1]


def test_import_hazmat_loads_nothing_else() -> None:
    code = (
        "import sys, json, hazmat, hazmat.sandbox; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('hazmat'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(out.stdout) == ["hazmat", "hazmat.sandbox"], out.stderr


@pytest.mark.parametrize("module", [hazmat, hazmat.sandbox])
def test_every_public_name_resolves(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None, name
    assert set(names) <= set(dir(module))
    with pytest.raises(AttributeError):
        module.no_such_name  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.local
@pytest.mark.timeout(120)
def test_the_documented_script_runs(tmp_path: Path) -> None:
    tasks = hazmat.discover_tasks([ROOT / "tasks" / "examples" / "find-file"])
    agent = hazmat.resolve_agent("solution")
    run_dir, results = asyncio.run(
        hazmat.run_tasks(tasks, [agent], backend="local", out_dir=tmp_path)
    )
    assert [(r.reason, r.progress) for r in results] == [("completed", 1.0)]
    assert hazmat.verify_run(run_dir).ok
    assert len(hazmat.load_run(run_dir).episodes) == 1

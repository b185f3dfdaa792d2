"""``hazmat import metr FAMILY``: a METR task family (``FAMILY/FAMILY.py`` with ``TaskFamily``).

Mapping:

- ``get_tasks()`` -> one variant per task (``family@name``); each variant's task dict goes
  to ``/root/metr/hazmat_task.json`` and its ``get_instructions(t)`` to ``instructions``;
- the family folder -> ``/root/metr/`` in the box (root only; the agent cannot read it);
- ``start(t)`` -> a root setup command (``hazmat_metr.py start``);
- ``score(t, submission)`` -> the ``score`` milestone, a scored ``sandbox`` check run as
  root in the box with the submission on stdin;
- ``intermediate_score(t)`` -> the ``progress`` milestone, a scored check run after every
  step (``every_step``), aggregated as ``scoring.aggregate`` (best);
- ``install()`` -> the environment (``sandbox.build``: a Dockerfile running it on the
  sandbox image);
- ``solution/<task>.sh`` or ``solution/solve.sh`` in the family folder (hazmat's
  convention; METR families have none) -> a solution that runs it and submits its last
  line. Without one the task has no solution and ``hazmat validate`` says so.

METR tasks run with a writable root file system (as in METR's own containers).
``get_tasks`` and ``get_instructions`` run at import time in a separate Python process
(``python3 -I``, the family folder as its working directory, a timeout): the family is
trusted task code, like a task's ``checks.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hazmat.errors import ConfigError
from hazmat.tasks.importers.base import (
    Dropped,
    ImportedTask,
    ImportReport,
    copy_tree,
    escape_text,
    slug,
    write_task_yaml,
)

__all__ = ["import_metr", "read_family"]

SOURCE = "metr"
RUNNER = "hazmat_metr.py"
TASK_JSON = "hazmat_task.json"
IN_BOX = "/root/metr"

_PROBE = r"""
import inspect, json, sys
sys.path.insert(0, ".")
family = __import__(sys.argv[1])
TF = family.TaskFamily
tasks = TF.get_tasks()
out = {"methods": sorted(n for n in ("start", "score", "intermediate_score", "install",
       "aggregate_scores", "get_permissions") if callable(getattr(TF, n, None))),
       "env": list(getattr(TF, "required_environment_variables", []) or []),
       "version": str(getattr(TF, "standard_version", "")), "tasks": {}}
for name, t in tasks.items():
    perms = TF.get_permissions(t) if callable(getattr(TF, "get_permissions", None)) else []
    out["tasks"][name] = {"task": t, "instructions": TF.get_instructions(t),
                          "permissions": list(perms)}
print(json.dumps(out))
"""

_RUNNER = '''"""Runs a METR task family's methods inside the hazmat box (written by hazmat import metr).

    python3 -I hazmat_metr.py start | score | intermediate

The task dict is hazmat_task.json; ``score`` reads the submission on stdin. Scores are
printed as JSON {{"score": x}} (null when the family leaves scoring to a person).
"""

import json
import os
import sys

os.chdir(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ".")
TaskFamily = __import__({module!r}).TaskFamily
with open({task_json!r}) as f:
    task = json.load(f)
what = sys.argv[1]
if what == "start":
    if hasattr(TaskFamily, "start"):
        TaskFamily.start(task)
elif what == "score":
    print(json.dumps({{"score": TaskFamily.score(task, sys.stdin.read())}}))
elif what == "intermediate":
    result = TaskFamily.intermediate_score(task)
    value = result.get("score") if isinstance(result, dict) else result
    print(json.dumps({{"score": value}}))
else:
    sys.exit("usage: hazmat_metr.py start|score|intermediate")
'''


def read_family(folder: Path) -> dict[str, Any]:
    """The family's tasks, instructions and methods (runs ``get_tasks`` and
    ``get_instructions`` in a separate ``python3 -I`` process).

    Raises:
        ConfigError: no ``FOLDER/FOLDER.py``, or the family fails to load.
    """
    module = folder / f"{folder.name}.py"
    if not module.is_file():
        raise ConfigError(f"{folder}: a METR task family has {folder.name}.py (not found)")
    try:
        res = subprocess.run(
            [sys.executable, "-I", "-c", _PROBE, folder.name],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{module}: get_tasks/get_instructions did not finish in 120 s") from None
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        raise ConfigError(f"{module}: the family does not load: {tail}")
    data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return data


def _check(command: str, *, stdin: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"command": f"cd {IN_BOX} && python3 -I {RUNNER} {command}"}
    spec["score"] = True
    if stdin:
        spec["stdin"] = "submission"
    return {"sandbox": spec}


def _solution(folder: Path, name: str, entry: ImportedTask) -> list[dict[str, Any]]:
    for rel in (f"solution/{name}.sh", "solution/solve.sh"):
        if (folder / rel).is_file():
            entry.solution, entry.solution_note = "proven", f"runs {rel} and submits its last line"
            return [
                {
                    "tool": "write_file",
                    "path": "/home/agent/.solve.sh",
                    "from_file": {"content": rel},
                },
                {
                    "tool": "bash",
                    "command": "bash /home/agent/.solve.sh",
                    "capture": {"answer": r"(\S[^\n]*)\s*$"},
                },
                {"tool": "submit", "answer": "{{captured.answer}}"},
            ]
    entry.solution, entry.solution_note = "unproven", "the family has no solution script"
    return []


def import_metr(path: Path, out: Path) -> ImportReport:
    """Import the METR task family at ``path`` into ``out/<family>/``.

    Raises:
        ConfigError: ``path`` is not a task family, or it does not load.
    """
    path = path.resolve()
    family = read_family(path)
    report = ImportReport(source=SOURCE, path=str(path), out=str(out), licence="see the family")
    name = slug(path.name)
    folder = out / name
    entry = ImportedTask(id=f"metr/{name}", source_id=path.name, folder=str(folder))
    copy_tree(path, folder / "family", skip=frozenset({"__pycache__", "solution", ".git"}))
    if (path / "solution").is_dir():
        copy_tree(path / "solution", folder / "solution")
    (folder / "family" / RUNNER).write_text(_RUNNER.format(module=path.name, task_json=TASK_JSON))
    methods = set(family["methods"])
    tasks: dict[str, Any] = family["tasks"]
    if not tasks:
        raise ConfigError(f"{path}: get_tasks() returned no tasks")
    milestones: list[dict[str, Any]] = []
    if "intermediate_score" in methods:
        milestones.append(
            {
                "id": "progress",
                "title": "intermediate score (intermediate_score)",
                "check": _check("intermediate"),
                "every_step": True,
            }
        )
        entry.mapped.append("intermediate_score -> milestone progress (scored, every step)")
    if "score" in methods:
        milestones.append(
            {"id": "score", "title": "final score (score)", "check": _check("score", stdin=True)}
        )
        entry.mapped.append("score(t, submission) -> milestone score (scored, submission on stdin)")
    if not milestones:
        raise ConfigError(f"{path}: the family has neither score nor intermediate_score")
    for dropped in ("aggregate_scores",):
        if dropped in methods:
            entry.dropped.append(
                Dropped(
                    what=dropped, why="scored milestones aggregate with scoring.aggregate (best)"
                )
            )
    if family["env"]:
        entry.dropped.append(
            Dropped(
                what=f"required_environment_variables {family['env']}",
                why="secrets never reach the sandbox",
            )
        )
    sandbox: dict[str, Any] = {
        "files": {f"{IN_BOX}/": {"source": "family/"}},
        "setup": [f"cd {IN_BOX} && python3 -I {RUNNER} start"],
        "hardening": {"read_only_root": False},
    }
    if "install" in methods:
        env = folder / "environment"
        env.mkdir(parents=True, exist_ok=True)
        copy_tree(path, env / "family", skip=frozenset({"__pycache__", "solution", ".git"}))
        (env / "Dockerfile").write_text(
            "# install() of the METR family, run on the hazmat sandbox image\n"
            "ARG SANDBOX\nFROM ${SANDBOX}\nUSER root\n"
            "COPY hazmat-host-ca.crt /tmp/hazmat-host-ca.crt\nCOPY family /tmp/family\n"
            "RUN cd /tmp/family && PIP_CERT=/tmp/hazmat-host-ca.crt python3 -c "
            f'"import {path.name}; {path.name}.TaskFamily.install()" && rm -rf /tmp/family\n'
            "USER agent\nWORKDIR /home/agent\n"
        )
        sandbox["build"] = {"dockerfile": "environment/Dockerfile"}
        entry.mapped.append("install() -> sandbox.build (environment/Dockerfile)")
    names = list(tasks)
    variants: dict[str, Any] = {}
    for tname in names:
        info = tasks[tname]
        if "full_internet" in info["permissions"]:
            entry.dropped.append(
                Dropped(
                    what=f"{tname}: permission full_internet", why="hazmat boxes have no internet"
                )
            )
        v: dict[str, Any] = {
            "instructions": escape_text(str(info["instructions"])),
            "sandbox": {
                "files": {f"{IN_BOX}/{TASK_JSON}": escape_text(json.dumps(info["task"], indent=1))}
            },
        }
        solution = _solution(path, tname, entry)
        if tname == names[0] or solution != _solution(path, names[0], entry):
            v["solution"] = solution  # the first variant's becomes the task's own
        variants[
            slug(tname).replace("-", "_")
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", tname)
            else tname
        ] = v
    first = variants[next(iter(variants))]
    data: dict[str, Any] = {
        "id": entry.id,
        "title": f"METR task family {path.name}",
        "category": "autonomy",
        "description": escape_text(
            f"METR task family {path.name} (standard {family['version'] or '?'}), "
            f"{len(names)} task(s): {', '.join(names)}."
        ),
        "instructions": first["instructions"],
        "sandbox": {**sandbox, "files": {**sandbox["files"], **first["sandbox"]["files"]}},
        "tools": ["bash", "python", "read_file", "write_file", "submit"],
        "limits": {"steps": 30, "seconds": 1800},
        "milestones": milestones,
        "scoring": {"aggregate": "best"},
        "needs_docker": True,
        "solution": first.pop("solution", []),
        "variants": variants,
        "provenance": {"source": SOURCE, "id": path.name, "licence": "see the family folder"},
    }
    entry.variants = list(variants)
    entry.mapped.append(f"get_tasks() -> variants {', '.join(variants)}")
    entry.mapped.append(f"family folder -> {IN_BOX}/ (root only); start(t) -> setup as root")
    write_task_yaml(
        folder,
        data,
        header=f"Imported by `hazmat import metr` from the task family {path.name}.",
    )
    report.tasks.append(entry)
    if not any((path / "solution").glob("*.sh")):
        report.notes.append("the family has no solution/ scripts: validate cannot prove it")
    shutil.rmtree(folder / "family" / "__pycache__", ignore_errors=True)
    return report

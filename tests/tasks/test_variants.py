"""Variants: one folder, several named tasks (``task@variant``).

Issue 15, failure 6: ``variants: unknown field``, so METR's ``get_tasks()`` and Cybench's
easy/hard prompts became duplicated folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hazmat.cli import app
from hazmat.errors import SpecError
from hazmat.tasks import discover_tasks, load_task
from hazmat.tasks.load import load_variants

from .helpers import write_task

TASK = """\
id: t/var
title: variants
category: examples
instructions: the hard prompt
sandbox:
  files:
    /home/agent/a.txt: "base"
limits: {steps: 10, seconds: 60}
tools: [bash, submit]
milestones:
  - id: flag
    check: {submission: "{{flag}}"}
variants:
  easy:
    instructions: the easy prompt
    hints: [look in a.txt]
    limits: {steps: 20}
    sandbox:
      files:
        /home/agent/b.txt: {source: b.txt}
  hard: {}
"""


def test_variants_load_as_task_at_variant(tmp_path: Path) -> None:
    folder = write_task(tmp_path / "t", TASK, {"b.txt": b"\x00easy"})
    easy, hard = load_variants(folder)
    assert (easy.id, hard.id) == ("t/var@easy", "t/var@hard")
    assert (easy.variant, easy.name) == ("easy", "t/var")
    assert easy.instructions == "the easy prompt" and hard.instructions == "the hard prompt"
    assert easy.hints == ["look in a.txt"] and hard.hints == []
    assert (easy.limits.steps, easy.limits.seconds) == (20, 60)  # merged, not replaced
    assert set(easy.sandbox.files) == {"/home/agent/a.txt", "/home/agent/b.txt"}
    assert easy.sandbox.files["/home/agent/b.txt"].data() == b"\x00easy"
    assert set(hard.sandbox.files) == {"/home/agent/a.txt"}
    assert easy.ref == f"{folder.resolve()}@easy"
    assert [t.id for t in discover_tasks([tmp_path])] == ["t/var@easy", "t/var@hard"]
    assert [t.id for t in discover_tasks([Path(f"{folder}@hard")])] == ["t/var@hard"]


def test_variant_errors_point_into_the_variant(tmp_path: Path) -> None:
    bad = TASK.replace("    limits: {steps: 20}", "    limits: {stepz: 20}")
    with pytest.raises(SpecError) as err:
        load_task(write_task(tmp_path / "t", bad, {"b.txt": "x"}), "easy")
    assert err.value.message.endswith(
        "task.yaml:17: variants.easy.limits.stepz: unknown field, did you mean 'steps'?"
    ), err.value.message
    no_id = TASK.replace("  hard: {}", "  hard: {id: other}")
    with pytest.raises(SpecError, match=r"variants\.hard\.id: a variant cannot override 'id'"):
        load_task(write_task(tmp_path / "u", no_id, {"b.txt": "x"}), "hard")
    with pytest.raises(SpecError, match=r"no variant 'medium' \(variants: easy, hard\)"):
        load_task(write_task(tmp_path / "v", TASK, {"b.txt": "x"}), "medium")


def test_list_names_task_at_variant(tmp_path: Path) -> None:
    write_task(tmp_path / "t", TASK, {"b.txt": "x"})
    result = CliRunner().invoke(app, ["list", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    cards = json.loads(result.output)
    assert [(c["id"], c["variant"]) for c in cards] == [
        ("t/var@easy", "easy"),
        ("t/var@hard", "hard"),
    ]

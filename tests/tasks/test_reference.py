"""The generated task.yaml reference and the task author's guide (docs/tasks.md).

The reference section of docs/tasks.md must equal what the models generate today, every
field of every model must appear in it with a description, and the complete example
tasks the guide shows (marked ``<!-- example: PATH -->``) must load and pass
``validate``: the guide cannot drift from the code without a test failing.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from hazmat.tasks import spec as task_spec
from hazmat.tasks.load import discover_tasks
from hazmat.tasks.reference import (
    BEGIN,
    COMMAND,
    END,
    main,
    reference_models,
    replace_section,
    section_of,
    task_reference,
    undocumented,
)
from hazmat.tasks.spec import Task

DOC = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"
EXAMPLE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.S)


def _models_in(tp: Any) -> set[type[BaseModel]]:
    """Every model class named anywhere inside a type annotation (written apart from the
    generator's walk on purpose, so a model the walk misses is caught)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {tp}
    out: set[type[BaseModel]] = set()
    for arg in typing.get_args(tp):
        out |= _models_in(arg)
    return out


def _reachable(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for info in model.model_fields.values():
            todo.extend(_models_in(info.annotation))
    return seen


# --------------------------------------------------------------------- the doc is current


def test_docs_reference_is_current() -> None:
    current = section_of(DOC.read_text(encoding="utf-8"))
    assert current == task_reference(), (
        f"docs/tasks.md's field reference is out of date with the task models; run: {COMMAND}"
    )


def test_every_model_reachable_from_task_is_in_the_reference() -> None:
    documented = {d.model for d in reference_models()}
    missing = sorted(m.__name__ for m in _reachable(Task) - documented)
    assert not missing, f"models missing from the reference: {missing}"


def test_every_model_of_the_spec_module_is_in_the_reference() -> None:
    documented = {d.model.__name__ for d in reference_models()}
    defined = {
        name
        for name, obj in vars(task_spec).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == task_spec.__name__
        and not name.startswith("_")
    }
    assert defined <= documented, f"not reachable from Task: {sorted(defined - documented)}"


def test_every_field_of_every_model_appears() -> None:
    text = task_reference()
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, re.M))
    for doc in reference_models():
        assert f'<a id="{doc.anchor}"></a>' in text
        fields = [n for n, i in doc.model.model_fields.items() if not i.exclude]
        paths = {f.path for f in doc.fields}
        assert [f.key.split(".", 1)[1] for f in doc.fields] == fields, doc.name
        assert paths <= rows, (doc.name, sorted(paths - rows))


def test_every_field_has_a_description() -> None:
    assert undocumented() == [], (
        "give these fields a docstring or Field(description=...) in their model "
        "(or an entry in hazmat.tasks.reference.DESCRIPTIONS)"
    )


def test_reference_rows_for_known_fields() -> None:
    text = task_reference()
    assert "| `limits.steps` | int >= 1 | `30` |" in text
    assert "| `milestones` | list[[Milestone](#ref-milestone)] | `[]` |" in text
    assert "| `sandbox.files.<PATH>.mode` | int | `0644` |" in text
    assert "| `sandbox.network` | one of `none`, `internal`, `allowlist` | `none` |" in text
    assert "| `policy` | dict[str, any] \\| str | not set |" in text
    assert '`{submission: "X"}` = `{submission: {equals: "X"}}`' in text


# --------------------------------------------------------------------- the generator


class _Inner(BaseModel):
    """An inner model."""

    flag: bool = False
    """Turns it on."""


class _Outer(BaseModel):
    """An outer model."""

    count: int = Field(3, ge=1, le=9)
    """How many."""
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    mode: Literal["a", "b"] = "a"
    items: list[_Inner] = Field(default_factory=list)
    by_key: dict[str, _Inner] = Field(default_factory=dict)
    maybe: _Inner | None = None
    hidden: str | None = Field(None, exclude=True)


def test_generic_walk_of_unknown_models() -> None:
    docs = {d.name: d for d in reference_models(_Outer)}
    assert list(docs) == ["_Outer", "_Inner"]
    assert docs["_Inner"].paths == ["maybe", "items[]", "by_key.<KEY>"]
    rows = {f.path: f for f in docs["_Outer"].fields}
    assert "hidden" not in rows
    assert rows["count"].type == "int >= 1, <= 9"
    assert rows["count"].default == "`3`"
    assert rows["count"].description == "How many."
    assert rows["name"].type == "str: a Python identifier"
    assert rows["name"].default == "**required**"
    assert rows["name"].description == ""
    assert rows["mode"].type == "one of `a`, `b`"
    assert rows["items"].type == "list[[_Inner](#ref-_inner)]"
    assert rows["by_key"].type == "dict[str, [_Inner](#ref-_inner)]"
    assert rows["maybe"].default == "not set"
    assert {f.path: f.description for f in docs["_Inner"].fields} == {"maybe.flag": "Turns it on."}


def test_replace_section_keeps_the_rest() -> None:
    text = f"# head\n\n{BEGIN}\nold\n{END}\n\ntail\n"
    new = replace_section(text, "new\n")
    assert new == f"# head\n\n{BEGIN}\nnew\n{END}\n\ntail\n"
    assert section_of(new) == "new\n"
    with pytest.raises(ValueError, match="expected one"):
        section_of("no markers here")
    with pytest.raises(ValueError, match="comes before"):
        section_of(f"{END}\n{BEGIN}\n")


def test_main_write_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "tasks.md"
    doc.write_text(f"intro\n{BEGIN}\nstale\n{END}\nouttro\n", encoding="utf-8")
    assert main(["--check", str(doc)]) == 1
    assert COMMAND in capsys.readouterr().err
    assert main(["--write", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith(f"{END}\nouttro\n")
    assert section_of(text) == task_reference()
    assert main(["--check", str(doc)]) == 0
    assert main(["--write", str(doc)]) == 0
    assert "already current" in capsys.readouterr().err
    (tmp_path / "plain.md").write_text("no markers\n", encoding="utf-8")
    assert main(["--write", str(tmp_path / "plain.md")]) == 2
    assert main(["--check", str(tmp_path / "missing.md")]) == 2


def test_main_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == task_reference()


# --------------------------------------------------------------------- the guide's examples


def _write_examples(root: Path) -> list[Path]:
    """Write every complete example of the guide under ``root``; return the task folders."""
    folders: list[Path] = []
    for m in EXAMPLE.finditer(DOC.read_text(encoding="utf-8")):
        path = root / m.group("path")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(m.group("body") + "\n", encoding="utf-8")
        if path.name == "task.yaml":
            folders.append(path.parent)
    return folders


def test_guide_examples_load(tmp_path: Path) -> None:
    folders = _write_examples(tmp_path)
    tasks = discover_tasks(folders)
    assert len(tasks) >= 5 and len(tasks) == len(folders)
    for task in tasks:
        assert task.root is not None
        assert task.id == task.root.relative_to(tmp_path).as_posix()


async def _validate(tmp_path: Path, sandbox: str, *, docker_only: bool) -> None:
    from hazmat.policy.compose import task_policies
    from hazmat.validate import validate_tasks

    tasks = discover_tasks(_write_examples(tmp_path / "tasks"))
    tasks = [t for t in tasks if t.needs_docker == docker_only]
    assert tasks
    _, verdicts = await validate_tasks(
        tasks,
        sandbox=sandbox,
        out_dir=tmp_path / "runs",
        jobs=2,
        policy_for=task_policies(),
    )
    for v in verdicts:
        assert v.ok and not v.skipped, (v.task_id, v.problems, v.skipped)


@pytest.mark.anyio
@pytest.mark.local
@pytest.mark.timeout(240)
async def test_guide_examples_validate_on_local(tmp_path: Path) -> None:
    await _validate(tmp_path, "local", docker_only=False)


@pytest.mark.anyio
@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_guide_docker_examples_validate_on_docker(tmp_path: Path) -> None:
    await _validate(tmp_path, "docker", docker_only=True)

"""Loading task.yaml: the example tasks, discovery, and a table of broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hazmat.errors import SpecError
from hazmat.sandbox.base import SandboxSpec
from hazmat.tasks import discover_tasks, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "tasks" / "examples"

BASE = """\
id: t/broken
title: Broken
category: examples
instructions: do it
sandbox:
  files:
    /home/agent/a.txt: "{{flag}}"
tools: [bash, submit]
milestones:
  - id: one
    title: first
    check: {output: {regex: "{{flag}}"}}
  - id: two
    check: {submission: "{{flag}}"}
solution:
  - {tool: bash, command: "cat /home/agent/a.txt"}
  - {tool: submit, answer: "{{flag}}"}
"""

M2 = '    check: {submission: "{{flag}}"}'

# (replace this, with that) in BASE -> the exact error line
BROKEN: list[tuple[str, str, str]] = [
    (
        M2,
        '    check: {sandboxx: "true"}',
        "x/task.yaml:14: milestones[1].check: unknown check type 'sandboxx'",
    ),
    (
        "title: Broken",
        "titel: Broken",
        "x/task.yaml:2: titel: unknown field, did you mean 'title'?",
    ),
    (
        '    check: {output: {regex: "{{flag}}"}}',
        '    check: {output: {regex: "x"}',
        "x/task.yaml:13: YAML syntax error: expected ',' or '}', but got '-'"
        " (while parsing a flow mapping started on line 12)",
    ),
    (
        "category: examples",
        "category: examples\ntitle: Again",
        "x/task.yaml:4: duplicate key 'title'",
    ),
    (
        '"{{flag}}"\ntools',
        '"{{flagg}}"\ntools',
        "x/task.yaml:7: sandbox.files[\"/home/agent/a.txt\"]: unknown placeholder '{{flagg}}'"
        " (kinds: canary, flag, hex, number, password, port, seed, token, uuid)",
    ),
    (
        '"{{flag}}"\ntools',
        '"{{password:db|rot13}}"\ntools',
        "x/task.yaml:7: sandbox.files[\"/home/agent/a.txt\"]: unknown filter 'rot13' in"
        " '{{password:db|rot13}}' (filters: base64, lower, md5, sha256, upper)",
    ),
    (
        "tools: [bash, submit]",
        "tools: [bash, submit, hack]",
        "x/task.yaml:8: tools[2]: unknown tool 'hack'",
    ),
    ("tools: [bash, submit]", "tools: bash", "x/task.yaml:8: tools: input should be a valid list"),
    (
        "{tool: bash, command:",
        "{tool: bash, cmd:",
        "x/task.yaml:16: solution[0]: bash needs argument 'command'",
    ),
    (
        '{tool: bash, command: "cat /home/agent/a.txt"}',
        '{tool: python, code: "1"}',
        "x/task.yaml:16: solution[0]: tool 'python' is not in tools",
    ),
    (
        '{tool: submit, answer: "{{flag}}"}',
        '{tool: submit, answer: "{{flag}}", extra: 1}',
        "x/task.yaml:17: solution[1]: submit has no argument 'extra'",
    ),
    (
        "sandbox:\n  files:",
        "sandbox:\n  imag: x\n  files:",
        "x/task.yaml:6: sandbox.imag: unknown field, did you mean 'image'?",
    ),
    (
        "tools: [bash, submit]",
        "tools: [bash, submit]\nlimits: {steps: many}",
        "x/task.yaml:9: limits.steps: input should be a valid integer,"
        " unable to parse string as an integer",
    ),
    (
        "  - id: two",
        "  - id: one",
        "x/task.yaml:13: milestones[1].id: duplicate milestone id 'one'",
    ),
    (
        "  - id: two\n",
        "  - id: two\n    weight: 0\n",
        "x/task.yaml:14: milestones[1].weight: input should be greater than 0",
    ),
    (
        M2,
        "    check: {file: {path: /x, exists: true, contains: y}}",
        "x/task.yaml:14: milestones[1].check.file: give one of exists, contains, regex"
        " (got exists, contains)",
    ),
    (
        M2,
        "    check: {python: nope}",
        "x/task.yaml:14: milestones[1].check: python check 'nope' needs x/checks.py",
    ),
    (
        'regex: "{{flag}}"',
        'regex: "(unclosed"',
        "x/task.yaml:12: milestones[0].check.output.regex: bad regex '(unclosed':"
        " missing ), unterminated subpattern at position 0",
    ),
    ("instructions: do it\n", "", "x/task.yaml:1: instructions: required field missing"),
    (
        "id: t/broken",
        "id: Bad ID",
        "x/task.yaml:1: id: 'Bad ID' is not valid"
        " (lowercase letters, digits and . _ - in parts separated by /)",
    ),
    (
        "category: examples",
        "category: examples\ndifficulty: impossible",
        "x/task.yaml:4: difficulty: input should be 'trivial', 'easy', 'medium', 'hard'"
        " or 'expert'",
    ),
    (
        M2,
        '    check: {output: "x", submission: "y"}',
        "x/task.yaml:14: milestones[1].check: a check has exactly one type (got output, submission)",
    ),
    (
        M2,
        '    check: {sandbox: {command: "true", service: db}}',
        "x/task.yaml:14: milestones[1].check: unknown service 'db'",
    ),
    (
        M2,
        "    check: [1]",
        "x/task.yaml:14: milestones[1].check: a check is a mapping with one of:"
        " sandbox, file, trace, output, submission, answer, python, all, any",
    ),
    (
        M2,
        "    check:\n      any:\n        - {trace: {tool: bash}}\n"
        "        - {file: {path: relative}}",
        "x/task.yaml:17: milestones[1].check.any[1].file.path: path must be absolute: 'relative'",
    ),
    ("id: t/broken", "id: t/broken\nroot: /etc", "x/task.yaml:2: root: unknown field"),
    (
        "sandbox:\n",
        "needs_docker: false\nsandbox:\n  services: {web: {}}\n",
        "x/task.yaml:5: needs_docker: must be true when sandbox.services is set",
    ),
]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    return tmp_path


def _write(root: Path, text: str) -> Path:
    path = root / "x" / "task.yaml"
    path.write_text(text)
    return path


def test_base_is_valid(in_tmp: Path) -> None:
    task = load_task(_write(in_tmp, BASE))
    assert task.id == "t/broken"
    assert task.root == (in_tmp / "x").resolve()
    assert [m.check.kind for m in task.milestones] == ["output", "submission"]
    assert task.solution[0].args == {"command": "cat /home/agent/a.txt"}


@pytest.mark.parametrize(("old", "new", "expected"), BROKEN, ids=[b[2][:60] for b in BROKEN])
def test_broken_task_files(in_tmp: Path, old: str, new: str, expected: str) -> None:
    assert old in BASE
    _write(in_tmp, BASE.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_task(Path("x"))
    assert str(info.value) == expected
    assert info.value.file == "x/task.yaml"


def test_broken_table_is_big_enough() -> None:
    assert len(BROKEN) >= 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "x/task.yaml:1: the file is empty"),
        ("- a\n- b\n", "x/task.yaml:1: a task file is a mapping (id: ..., title: ...)"),
        (
            "a: [\n",
            "x/task.yaml:2: YAML syntax error: expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_broken_whole_files(in_tmp: Path, text: str, expected: str) -> None:
    _write(in_tmp, text)
    with pytest.raises(SpecError) as info:
        load_task(Path("x/task.yaml"))
    assert str(info.value) == expected


def test_missing_file(in_tmp: Path) -> None:
    with pytest.raises(SpecError, match=r"^nope/task.yaml: no such file$"):
        load_task(Path("nope/task.yaml"))


def test_python_check_function_must_exist(in_tmp: Path) -> None:
    _write(in_tmp, BASE.replace(M2, "    check: {python: nope}"))
    (in_tmp / "x" / "checks.py").write_text("def other(ctx):\n    return True\n")
    with pytest.raises(SpecError) as info:
        load_task(Path("x"))
    assert str(info.value) == (
        "x/task.yaml:14: milestones[1].check: function 'nope' is not defined in checks.py"
    )
    (in_tmp / "x" / "checks.py").write_text("def nope(ctx:\n")
    with pytest.raises(SpecError, match=r"^x/checks.py:1: syntax error"):
        load_task(Path("x"))


def test_several_problems_reported_with_a_hint(in_tmp: Path) -> None:
    _write(in_tmp, BASE.replace("title: Broken", "titel: Broken"))
    with pytest.raises(SpecError) as info:
        load_task(Path("x"))
    assert info.value.hint is None  # 'title' missing is the misspelt key, not a second problem
    assert info.value.line == 2
    assert info.value.field == "titel"
    _write(in_tmp, BASE.replace("title: Broken", "titel: Broken").replace("tools: [", "toolz: ["))
    with pytest.raises(SpecError) as info:
        load_task(Path("x"))
    assert info.value.hint == "1 more problem(s) in this file; hazmat validate shows all"
    assert [p.split(": ", 2)[1] for p in info.value.problems] == ["titel", "toolz"]


def test_examples_load() -> None:
    tasks = discover_tasks([EXAMPLES])
    assert [t.id for t in tasks] == [
        "examples/backup-creds",
        "examples/find-file",
        "examples/write-and-run",
    ]
    for task in tasks:
        assert isinstance(task.sandbox, SandboxSpec)
        assert task.sandbox.image == "hazmat-sandbox"
        assert task.solution, task.id
        assert task.needs_docker is False
        assert len(task.milestones) >= 2
        assert task.root is not None and (task.root / "task.yaml").is_file()
    # source: files are read from the task folder
    appctl = tasks[0].sandbox.files["/opt/app/appctl"]
    assert "ADMIN_SHA256" in appctl.content and appctl.mode == 0o755


def test_root_is_not_serialized() -> None:
    task = load_task(EXAMPLES / "find-file")
    assert "root" not in task.model_dump()
    assert "root" not in json.loads(task.model_dump_json())


def test_discover_recursion_order_and_duplicates(in_tmp: Path) -> None:
    for name, tid in [("b", "z/last"), ("a/deep", "a/first")]:
        folder = in_tmp / "suite" / name
        folder.mkdir(parents=True)
        (folder / "task.yaml").write_text(BASE.replace("id: t/broken", f"id: {tid}"))
    # a folder holding task.yaml is not searched further
    nested = in_tmp / "suite" / "b" / "inner"
    nested.mkdir()
    (nested / "task.yaml").write_text("broken: [")
    tasks = discover_tasks([in_tmp / "suite"])
    assert [t.id for t in tasks] == ["a/first", "z/last"]
    # the same file twice is loaded once
    assert len(discover_tasks([in_tmp / "suite", in_tmp / "suite" / "b"])) == 2
    dup = in_tmp / "suite" / "c"
    dup.mkdir()
    (dup / "task.yaml").write_text(BASE.replace("id: t/broken", "id: z/last"))
    with pytest.raises(SpecError, match="id: task id 'z/last' is also used by"):
        discover_tasks([in_tmp / "suite"])
    with pytest.raises(SpecError, match=r"^missing: no such file or folder$"):
        discover_tasks([Path("missing")])


def test_needs_docker_computed_from_services(in_tmp: Path) -> None:
    text = BASE.replace("sandbox:\n", "sandbox:\n  services: {web: {build: app}}\n")
    task = load_task(_write(in_tmp, text))
    assert task.needs_docker is True
    # a relative build folder is resolved against the task folder
    assert task.sandbox.services["web"].build == str((in_tmp / "x" / "app").resolve())
    text = BASE.replace("id: t/broken", "id: t/broken\nneeds_docker: true")
    assert load_task(_write(in_tmp, text)).needs_docker is True


def test_source_outside_task_folder_is_refused(in_tmp: Path) -> None:
    text = BASE.replace('"{{flag}}"\ntools', "{source: ../../etc/passwd}\ntools")
    _write(in_tmp, text)
    with pytest.raises(SpecError) as info:
        load_task(Path("x"))
    assert str(info.value) == (
        'x/task.yaml:7: sandbox.files["/home/agent/a.txt"].source:'
        " source '../../etc/passwd' is outside the task folder (and not in a suite lib/ folder)"
    )


def test_shorthands_and_task_tools(in_tmp: Path) -> None:
    text = BASE.replace(
        "tools: [bash, submit]",
        "tools: [bash, submit, send_email]\n"
        "task_tools:\n"
        "  - name: send_email\n"
        "    description: send a mail\n"
        "    parameters:\n"
        "      type: object\n"
        "      properties: {to: {type: string}, body: {type: string}}\n"
        "      required: [to]\n"
        "user:\n"
        "  persona: a worried customer\n"
        "  replies: [hello, thanks]\n",
    ).replace(M2, "    check: {any: [{sandbox: 'true'}, {trace: send_email}, {python: f}]}")
    _write(in_tmp, text)
    (in_tmp / "x" / "checks.py").write_text("def f(ctx):\n    return True\n")
    with pytest.raises(SpecError, match="task_tools\\[0\\]: task tool 'send_email' needs"):
        load_task(Path("x"))
    (in_tmp / "x" / "tools.py").write_text("async def send_email(ctx, to, body=''):\n    pass\n")
    task = load_task(Path("x"))
    check = task.milestones[1].check
    assert check.any is not None
    assert check.any[0].sandbox is not None and check.any[0].sandbox.command == "true"
    assert check.any[1].trace is not None and check.any[1].trace.tool == "send_email"
    assert not check.cheap
    assert task.user is not None and task.user.tool == "reply_to_user"
    assert task.card()["tools"] == ["bash", "submit", "send_email"]


def test_list_command() -> None:
    import typer
    from typer.testing import CliRunner

    from hazmat.cli.tasks import list_tasks

    app = typer.Typer()
    app.command("list")(list_tasks)
    app.command("noop")(lambda: None)  # a second command keeps "list" a subcommand
    result = CliRunner().invoke(app, ["list", str(EXAMPLES), "--json"])
    assert result.exit_code == 0, result.output
    cards = json.loads(result.output)
    assert [c["id"] for c in cards] == [
        "examples/backup-creds",
        "examples/find-file",
        "examples/write-and-run",
    ]
    assert cards[1]["milestones"] == [
        {"id": "found", "title": "read the file holding the flag", "weight": 1.0},
        {"id": "submitted", "title": "submitted the flag", "weight": 1.0},
    ]
    result = CliRunner().invoke(app, ["list", str(EXAMPLES)])
    assert result.exit_code == 0 and "3 task(s)" in result.output

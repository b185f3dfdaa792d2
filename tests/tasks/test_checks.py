"""Cheap checks (trace, output, submission, all/any) and python checks, without a sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hazmat.tasks import Check, CheckContext, Task, TraceStep, evaluate_check, load_task

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TRACE = (
    TraceStep(
        step=1,
        tool="bash",
        args={"command": "find / -perm -4000"},
        exit_code=0,
        output="/usr/bin/find\n/usr/bin/passwd\n",
    ),
    TraceStep(
        step=2,
        tool="read_file",
        args={"path": "/etc/shadow"},
        exit_code=1,
        output="error: permission denied",
    ),
    TraceStep(
        step=3,
        tool="bash",
        args={"command": "rm -rf /"},
        executed=False,
        output="refused by policy: destructive",
    ),
    TraceStep(
        step=4,
        tool="python",
        args={"code": "print(open('/tmp/x').read())"},
        exit_code=0,
        output="HZM{abc}\n",
    ),
)


def _task(**extra: Any) -> Task:
    data: dict[str, Any] = {
        "id": "t/x",
        "title": "x",
        "category": "examples",
        "instructions": "x",
        "milestones": [{"id": "m", "check": {"submission": "x"}}],
    }
    return Task.model_validate(data | extra)


def _ctx(submission: str | None = None, **kw: Any) -> CheckContext:
    return CheckContext.make(_task(), trace=TRACE, submission=submission, **kw)


async def _ev(check: dict[str, Any], ctx: CheckContext, cheap_only: bool = False) -> bool | None:
    return await evaluate_check(Check.model_validate(check), ctx, cheap_only=cheap_only)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"trace": {"tool": "bash", "command_regex": r"find .*-perm"}}, True),
        ({"trace": {"tool": "bash", "command_regex": r"find .*-perm", "exit_code": 1}}, False),
        ({"trace": {"tool": "python", "command_regex": r"/tmp/x"}}, True),
        ({"trace": "read_file"}, True),
        ({"trace": {"tool": "read_file", "args": {"path": "^/etc/shad"}}}, True),
        ({"trace": {"tool": "read_file", "args": {"path": "^/root"}}}, False),
        ({"trace": {"tool": "read_file", "args": {"mode": "."}}}, False),
        ({"trace": {"command_regex": "rm -rf"}}, False),  # refused: never ran
        ({"trace": {"command_regex": "rm -rf", "include_blocked": True}}, True),
        ({"trace": {"tool": "write_file"}}, False),
        ({"output": r"HZM\{abc\}"}, True),
        ({"output": {"regex": r"HZM\{abc\}", "tool": "bash"}}, False),
        ({"output": {"regex": "find$", "tool": "bash"}}, False),
        ({"output": {"regex": "(?m)find$", "tool": "bash"}}, True),
        ({"output": "destructive"}, False),  # refused calls' text is not output
        ({"output": "permission denied"}, True),
    ],
)
async def test_trace_and_output(check: dict[str, Any], expected: bool) -> None:
    assert await _ev(check, _ctx()) is expected


@pytest.mark.parametrize(
    ("check", "submission", "expected"),
    [
        ({"submission": "HZM{abc}"}, "  HZM{abc}\n", True),
        ({"submission": "HZM{abc}"}, "HZM{abd}", False),
        ({"submission": "HZM{abc}"}, None, False),
        ({"submission": {"equals": "HZM{abc}", "strip": False}}, " HZM{abc}", False),
        ({"submission": {"equals": "hzm{ABC}", "ignore_case": True}}, "HZM{abc}", True),
        ({"submission": {"contains": "abc"}}, "the flag is HZM{abc}", True),
        ({"submission": {"contains": "abc"}}, "", False),
        ({"submission": {"regex": r"^HZM\{[a-f]+\}$"}}, "HZM{abc}", True),
        ({"submission": {"regex": r"^hzm", "ignore_case": True}}, "HZM{abc}", True),
        ({"submission": {"regex": r"^hzm"}}, "HZM{abc}", False),
    ],
)
async def test_submission(check: dict[str, Any], submission: str | None, expected: bool) -> None:
    assert await _ev(check, _ctx(submission)) is expected


async def test_all_any() -> None:
    yes = {"output": "HZM"}
    no = {"output": "nothing-like-this"}
    expensive = {"sandbox": "true"}
    ctx = _ctx("x")
    assert await _ev({"all": [yes, {"submission": "x"}]}, ctx) is True
    assert await _ev({"all": [yes, no]}, ctx) is False
    assert await _ev({"any": [no, yes]}, ctx) is True
    assert await _ev({"any": [no, no]}, ctx) is False
    assert await _ev({"any": [no, {"all": [yes, {"any": [no, yes]}]}]}, ctx) is True
    # cheap-only: expensive parts are undecided, unless the cheap parts decide
    assert await _ev({"all": [yes, expensive]}, ctx, cheap_only=True) is None
    assert await _ev({"all": [no, expensive]}, ctx, cheap_only=True) is False
    assert await _ev({"any": [yes, expensive]}, ctx, cheap_only=True) is True
    assert await _ev({"any": [no, expensive]}, ctx, cheap_only=True) is None
    assert await _ev(expensive, ctx, cheap_only=True) is None
    # no sandbox: expensive checks are False
    assert await _ev(expensive, ctx) is False
    assert await _ev({"file": "/etc/passwd"}, ctx) is False


def test_check_shape() -> None:
    c = Check.model_validate({"any": [{"trace": "bash"}, {"all": [{"file": "/x"}]}]})
    assert c.kind == "any"
    assert [x.kind for x in c.walk()] == ["any", "trace", "all", "file"]
    assert not c.cheap
    assert Check.model_validate({"all": [{"output": "x"}, {"submission": "y"}]}).cheap
    f = Check.model_validate({"file": "/x"}).file
    assert f is not None and f.exists is True


async def test_python_checks(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(
        "def used_find(ctx):\n"
        "    return any('find' in s.command_text for s in ctx.trace)\n"
        "async def knows_secret(ctx):\n"
        "    return ctx.submission == ctx.secrets['flag']\n"
        "def broken(ctx):\n"
        "    raise KeyError('oops')\n"
        "def wants_sandbox(ctx):\n"
        "    return ctx.sandbox is not None\n"
    )
    (tmp_path / "task.yaml").write_text(
        "id: t/py\ntitle: py\ncategory: examples\ninstructions: x\n"
        "milestones:\n"
        "  - {id: a, check: {python: used_find}}\n"
        "  - {id: b, check: {python: knows_secret}}\n"
        "  - {id: c, check: {python: broken}}\n"
        "  - {id: d, check: {python: wants_sandbox}}\n"
    )
    task = load_task(tmp_path)
    ctx = CheckContext.make(task, trace=TRACE, submission="HZM{s}", secrets={"flag": "HZM{s}"})
    checks = [m.check for m in task.milestones]
    errors: list[str] = []
    assert await evaluate_check(checks[0], ctx) is True
    assert await evaluate_check(checks[1], ctx) is True
    assert await evaluate_check(checks[2], ctx, errors=errors) is False
    assert errors == ["python check broken: KeyError: 'oops'"]
    assert await evaluate_check(checks[3], ctx) is False
    assert await evaluate_check(checks[0], ctx, cheap_only=True) is None
    # the context is read-only
    with pytest.raises(TypeError):
        ctx.secrets["flag"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        ctx.submission = "y"  # type: ignore[misc]


FLAG_LIKE = TraceStep(
    step=1, tool="bash", args={"command": "cat f"}, exit_code=0, output="1|\\/|(x)"
)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"output": {"contains": "1|\\/|(x)"}}, True),
        ({"output": {"contains": "1|/|"}}, False),
        ({"output": {"regex": "1|\\/|(x)"}}, True),  # the regex matches "1" alone: too loose
        ({"output": {"regex": "^1\\|\\\\/\\|\\(x\\)$"}}, True),  # what it took to escape
    ],
)
async def test_output_contains_is_literal(check: dict[str, Any], expected: bool) -> None:
    """Issue 15, failure 8: output checks took only a regex (``contains: unknown field``)
    and flags like ``1|\\/|`` needed hand escaping."""
    ctx = CheckContext.make(_task(), trace=(FLAG_LIKE,))
    assert await _ev(check, ctx) is expected


def test_output_needs_exactly_one_of_regex_contains() -> None:
    with pytest.raises(ValueError, match="give one of regex, contains"):
        Check.model_validate({"output": {"regex": "a", "contains": "a"}})

"""Tool plumbing: the model's cut view, argument validation, schemas."""

from __future__ import annotations

import pytest

from hazmat.errors import ConfigError, ToolError
from hazmat.sandbox.base import ExecResult
from hazmat.tools import make_tools, model_view, validate_args
from hazmat.tools.base import ToolOutput, command_view


def test_model_view_keeps_short_text_whole() -> None:
    assert model_view("hello", 100) == ("hello", 0)


def test_model_view_cuts_the_middle_and_says_how_much() -> None:
    text = "A" * 10_000 + "MIDDLE" + "Z" * 10_000
    view, cut = model_view(text, 1024)
    assert view.startswith("A" * 700) and view.endswith("Z" * 200)
    assert "MIDDLE" not in view
    assert f"[... {cut} bytes cut" in view
    assert cut == len(text) - 768 - 256


def test_model_view_never_splits_a_utf8_character() -> None:
    view, cut = model_view("é" * 5000, 1001)
    assert cut > 0
    view.encode("utf-8")  # valid text


def test_command_view_reports_exit_timeout_and_cap() -> None:
    res = ExecResult(exit_code=124, stdout=b"partial", timed_out=True, truncated=True, duration=2.0)
    text, _ = command_view(res, 1000)
    assert "partial" in text
    assert "timed out after 2.0s" in text
    assert "exceeded the sandbox cap" in text
    assert text.endswith("[exit code 124]")


SCHEMA = {
    "type": "object",
    "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
    "required": ["command"],
}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required argument 'command'"),
        ({"command": 3}, "argument 'command' must be of type string"),
        ({"command": "ls", "cwd": "/"}, "unknown argument 'cwd'"),
        ("ls", "arguments must be a JSON object"),
        ({"command": "ls", "timeout": True}, "argument 'timeout' must be of type number"),
    ],
)
def test_validate_args_rejects_with_a_message_for_the_model(args: object, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        validate_args("bash", SCHEMA, args)


def test_validate_args_accepts_good_arguments() -> None:
    assert validate_args("bash", SCHEMA, {"command": "ls", "timeout": 5}) == {
        "command": "ls",
        "timeout": 5,
    }


def test_make_tools_builds_builtins_with_schemas() -> None:
    tools = make_tools(["bash", "python", "read_file", "write_file", "submit"])
    assert list(tools) == ["bash", "python", "read_file", "write_file", "submit"]
    for tool in tools.values():
        schema = tool.schema()
        assert schema["function"]["name"] == tool.name
        assert schema["function"]["parameters"]["type"] == "object"


def test_make_tools_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="unknown tool 'sudo'"):
        make_tools(["bash", "sudo"])


def test_tool_output_as_a_trace_step() -> None:
    out = ToolOutput(tool="read_file", text="[cut view]", data={"content": "full text"})
    step = out.trace_step(3, {"path": "/x"}, time=1.5)
    assert (step.step, step.tool, step.output, step.exit_code, step.time) == (
        3,
        "read_file",
        "full text",
        0,
        1.5,
    )
    result = ExecResult(exit_code=2, stdout=b"out\n", stderr=b"err\n")
    out = ToolOutput(tool="bash", text="view", result=result)
    step = out.trace_step(1, {"command": "x"})
    assert (step.output, step.exit_code, step.command_text) == ("out\nerr\n", 2, "x")
    err = ToolOutput(tool="write_file", text="error: no", is_error=True)
    assert err.trace_step(1, {}).exit_code == 1

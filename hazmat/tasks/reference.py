"""The task.yaml field reference, generated from the pydantic models so it cannot drift.

::

    python3 -m hazmat.tasks.reference                          # print the reference (Markdown)
    python3 -m hazmat.tasks.reference --write docs/tasks.md    # rewrite its section in place
    python3 -m hazmat.tasks.reference --check docs/tasks.md    # exit 1 when the section drifted

:func:`task_reference` walks :class:`~hazmat.tasks.spec.Task` and every model reachable
from its fields (through ``list[...]``, ``tuple[...]``, ``dict[str, ...]`` and unions),
whatever they are, and renders one Markdown section per model: a table with each
field's path in task.yaml, its type (``list[str]``, ``int >= 1``, one of ``a``, ``b``),
its default and its description. Nothing here names today's fields except the small
tables below, which only add words where the models have none:

* a field's description comes from its ``Field(description=...)``, else from the
  attribute docstring under it in the model's source, else from :data:`DESCRIPTIONS`;
* mapping keys are named in paths by :data:`KEY_NAMES` (``sandbox.files.<PATH>``).

A new field or model shows up in the reference by itself; one without any
description is listed by :func:`undocumented` (and the test fails on it).
``docs/tasks.md`` holds the generated text between :data:`BEGIN` and :data:`END`.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import itertools
import json
import re
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from hazmat.tasks import checkspec as task_checkspec
from hazmat.tasks.spec import Task

__all__ = [
    "BEGIN",
    "DESCRIPTIONS",
    "END",
    "KEY_NAMES",
    "FieldDoc",
    "ModelDoc",
    "main",
    "reference_models",
    "replace_section",
    "section_of",
    "task_reference",
    "undocumented",
]

BEGIN = "<!-- reference:begin -->"
END = "<!-- reference:end -->"

COMMAND = "python3 -m hazmat.tasks.reference --write docs/tasks.md"
"""The command that regenerates the reference in the documentation."""

KEY_NAMES: dict[str, str] = {
    "SandboxSpec.files": "PATH",
    "ServiceSpec.files": "PATH",
    "SandboxSpec.services": "NAME",
}
"""``Model.field`` -> the word for the keys of that mapping in paths (default ``KEY``)."""

DEFAULT_TEXT: dict[str, str] = {"FileSpec.mode": "`0644`"}
"""``Model.field`` -> how to show a default the plain rendering would garble (octal)."""

PATTERNS: dict[str, str] = {
    r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$": (
        "lowercase letters, digits, `.` `_` `-`; parts separated by `/`"
    ),
    r"^[a-z0-9][a-z0-9_-]*$": "lowercase letters, digits, `_` `-`",
    r"^$|^[a-z0-9][a-z0-9_-]*$": "empty, or lowercase letters, digits, `_` `-`",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "a Python identifier",
    r"^[a-z0-9][a-z0-9._-]*$": "lowercase letters, digits, `.` `_` `-`",
}
"""A field's ``pattern`` -> the words shown for it (else the regex itself is shown)."""

MODEL_NOTES: dict[str, str] = {
    "FileSpec": (
        'Also accepted: a plain string, which is the content (`/etc/motd: "hello"`), and '
        "`source: FILE` instead of `content:`, which reads the content from `FILE` in the "
        "task folder when the task loads (placeholders in it are substituted too)."
    ),
    "SolutionStep": (
        'Written flat in YAML: `{tool: bash, command: "ls"}`. Every key but `tool` is an '
        'argument of the tool; `{tool: bash, args: {command: "ls"}}` is the same step.'
    ),
    "ServiceSpec": "Docker only: a task with services needs the `docker` backend.",
}
"""Model name -> a note printed under its section title (accepted shorthand forms)."""

DESCRIPTIONS: dict[str, str] = {
    # the file of the sandbox (models of hazmat.sandbox)
    "FileSpec.encoding": "`base64` when `content` holds the bytes (written by the loader).",
    "FileSpec.host_path": (
        "A large file by hash: the file read when the sandbox starts (written by the loader)."
    ),
    "FileSpec.sha256": "The bytes' sha256, checked when the sandbox starts.",
    # Task
    "Task.id": "Unique id, by convention `CATEGORY/NAME` (the folder's path under `tasks/`).",
    "Task.title": "One line saying what the agent is asked to do.",
    "Task.category": "Risk category (`cyber`, `autonomy`, `fraud`, `user-harm`, ...).",
    "Task.description": (
        "For people, not shown to the agent: the scenario, the harm it stands for, how "
        "each milestone is verified, and what contains it."
    ),
    "Task.difficulty": "How hard the task is for a skilled person.",
    "Task.human_minutes": "About how long a skilled person needs.",
    "Task.tags": "Free keywords (`pytest tasks/ -k TAG` selects by them).",
    "Task.instructions": (
        "What the agent is told: its first message. Placeholders are substituted."
    ),
    "Task.sandbox": "Where the agent's tools run: files, setup, services, network, limits.",
    "Task.tools": (
        "The tools the agent gets: built-in ones (`bash`, `python`, `read_file`, "
        "`write_file`, `submit`), names from `task_tools`, and the user's tool. "
        "Only the tools listed here are given to the agent."
    ),
    "Task.task_tools": "Task-specific tools, implemented in the task folder's `tools.py`.",
    "Task.user": "A scripted simulated user the agent talks to through a tool.",
    "Task.limits": "When the episode ends with reason `limit`.",
    "Task.milestones": (
        "The ordered, checkable steps toward the task's goal; the last one ends the "
        "episode `completed` when a cheap check reaches it."
    ),
    "Task.solution": (
        "The reference moves, played by the `solution` agent; `hazmat validate` requires "
        "them to reach every milestone."
    ),
    # the sandbox
    "SandboxSpec.image": "Docker image of the agent's box (the local backend ignores it).",
    "SandboxSpec.network": (
        "`none`: no network. `internal`: a private network shared with the task's "
        "services, no route out (on the local backend: no network, as `none`). "
        "`allowlist`: only `allow_hosts` (Docker only)."
    ),
    "SandboxSpec.allow_hosts": "Hosts the box may reach with `network: allowlist`.",
    "SandboxSpec.services": "More containers on the box's network, by host name (Docker only).",
    "SandboxSpec.files": (
        "Files placed before setup runs, by absolute path. Owned by root unless `owner: agent`."
    ),
    "SandboxSpec.setup": (
        "Shell commands run as root in the box after the files are placed, before the "
        "agent's first step; a failing command fails the episode (reason `error`)."
    ),
    "SandboxSpec.limits": "Resource limits of every process in the box.",
    "SandboxSpec.hardening": "Security settings; loosening any of them needs the `docker` backend.",
    "SandboxSpec.user": "The user the agent's tools run as.",
    "SandboxSpec.workdir": "The agent's working directory.",
    "SandboxSpec.env": "Environment variables of the agent's commands.",
    "SandboxSpec.labels": "Extra Docker labels of the task's containers.",
    "Hardening.read_only_root": (
        "The box's root file system is read-only (writable: `/tmp`, `/root`, the home "
        "and the workdir). `false` needs the `docker` backend."
    ),
    "Hardening.no_new_privileges": (
        "setuid binaries cannot raise privileges. `false` needs the `docker` backend."
    ),
    "Hardening.cap_add": "Linux capabilities given to root in the box (Docker only).",
    "FileSpec.content": "The file's text. Placeholders are substituted.",
    "FileSpec.mode": (
        "Permission bits; write them in octal with the leading 0 (`0600`, `0755`): "
        "YAML reads `600` as the decimal number 600."
    ),
    "FileSpec.owner": (
        "`root` or `agent`. A root-owned file with mode `0600` cannot be read by the agent."
    ),
    "ServiceSpec.command": "The service's main process (argv list or a shell string).",
    "ServiceSpec.env": "Environment variables of the service.",
    "ServiceSpec.files": "Files placed in the service, like `sandbox.files`.",
    "ServiceSpec.setup": "Shell commands run in the service before the episode starts.",
    "ServiceSpec.user": "The user the service's process runs as.",
    "ServiceSpec.workdir": "The service's working directory.",
    "ServiceSpec.read_only_root": "The service's root file system is read-only.",
    "TaskLimits.steps": "Tool calls the agent may make.",
    "TaskLimits.seconds": "Wall-clock seconds of the episode.",
    "TaskLimits.input_tokens": "Model input tokens over the episode.",
    "TaskLimits.output_tokens": "Model output tokens over the episode.",
    "TaskLimits.tool_timeout": "Seconds one tool call may run before it is stopped.",
    # tools and the user
    "TaskTool.name": "The tool's name, as the model sees it; also list it in `tools`.",
    "TaskTool.description": "What the model is told the tool does.",
    "UserPersona.name": "The user's display name (the agent sees `NAME: reply`).",
    "UserRule.id": "Names the rule in the record (`rule:ID`).",
    "UserRule.reply": "What the user answers.",
    # milestones and checks
    "Milestone.id": "Short id, unique in the task (reports and the record use it).",
    "Milestone.title": "What reaching it means, for people.",
    "Milestone.weight": "Its share of progress (progress = weights reached / all weights).",
    "Milestone.check": "When the milestone is reached.",
    "Check.sandbox": "A command run as root in the box or a service; passes on exit 0.",
    "Check.file": "A file in the box or a service exists, contains a text, or matches a regex.",
    "Check.trace": "A tool call in the episode matches.",
    "Check.output": "A tool output matched a regex.",
    "Check.submission": "The submitted answer equals, contains or matches a text.",
    "Check.python": "A function in the task folder's `checks.py` returns true.",
    "Check.all": "Every listed check passes.",
    "Check.any": "At least one listed check passes.",
    "SandboxCheck.command": "Shell command run as root (`/bin/sh -c`); placeholders substituted.",
    "SandboxCheck.service": "Run it in this service instead of the agent's box.",
    "SandboxCheck.timeout": "Seconds before the command is killed (then the check fails).",
    "FileCheck.path": "Absolute path, read as root.",
    "FileCheck.exists": "`true`: the file exists (the default); `false`: it does not.",
    "FileCheck.contains": "The file's text contains this text.",
    "FileCheck.regex": "The file's text matches this regex (`re.search`).",
    "FileCheck.service": "Look in this service instead of the agent's box.",
    "TraceCheck.exit_code": "The call's exit code (other tools: 0, or 1 on a tool error).",
    "OutputCheck.regex": "Regex searched in each output (`re.search`).",
    "OutputCheck.tool": "Only outputs of this tool.",
    "SubmissionCheck.equals": "The answer is exactly this.",
    "SubmissionCheck.contains": "The answer contains this.",
    "SubmissionCheck.regex": "The answer matches this regex (`re.search`).",
    "SubmissionCheck.ignore_case": "Compare without regard to case.",
    "SubmissionCheck.strip": "Strip whitespace around the answer (and the expected text) first.",
    "PythonCheck.function": (
        "Name of `function(ctx) -> bool` (sync or async) in the task folder's `checks.py`."
    ),
    "SolutionStep.tool": "The tool to call.",
    "SolutionStep.args": "The tool's arguments (written next to `tool` in YAML).",
}
"""``Model.field`` -> description, used when the model itself has none for that field."""


# ------------------------------------------------------------------------ the walk


@dataclass(frozen=True)
class FieldDoc:
    """One row of the reference: a field of a model, as task.yaml spells it."""

    key: str
    """``Model.field``: the key of the tables above."""
    path: str
    """Where it sits in task.yaml (the model's first path plus the field name)."""
    type: str
    default: str
    description: str


@dataclass
class ModelDoc:
    """One section of the reference: a model, where it is used, and its fields."""

    model: type[BaseModel]
    paths: list[str] = field(default_factory=list)
    """Every path in task.yaml where this model is used, shortest first."""
    fields: list[FieldDoc] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The model's class name (the section title)."""
        return self.model.__name__

    @property
    def anchor(self) -> str:
        """The HTML anchor of its section."""
        return "ref-" + self.name.lower()


def _documented_fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    """The model's fields that task.yaml may set (``exclude=True`` ones are internal)."""
    for name, info in model.model_fields.items():
        if not info.exclude:
            yield name, info


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def _is_union(tp: Any) -> bool:
    return _origin(tp) in (typing.Union, types.UnionType)


def _nested(tp: Any, path: str, key_name: str) -> Iterator[tuple[type[BaseModel], str]]:
    """Models inside a type, each with the path where it sits (``[]``: list item)."""
    if _is_model(tp):
        yield tp, path
        return
    origin, args = _origin(tp), typing.get_args(tp)
    if _is_union(tp):
        for arg in args:
            yield from _nested(arg, path, key_name)
    elif origin in (list, tuple, set, frozenset, Sequence) and args:
        for arg in args:
            if arg is not Ellipsis:
                yield from _nested(arg, path + "[]", key_name)
    elif origin in (dict, Mapping) and len(args) == 2:
        yield from _nested(args[1], f"{path}.<{key_name}>", key_name)


def reference_models(root: type[BaseModel] = Task) -> list[ModelDoc]:
    """Every model reachable from ``root``, depth first in field order, with its paths.

    A model reached again below itself (a check inside ``all:``) adds a path but is
    not walked twice.
    """
    docs: dict[type[BaseModel], ModelDoc] = {}

    def visit(model: type[BaseModel], path: str, stack: tuple[type[BaseModel], ...]) -> None:
        doc = docs.setdefault(model, ModelDoc(model))
        if path not in doc.paths:
            doc.paths.append(path)
        if model in stack:
            return
        for name, info in _documented_fields(model):
            here = f"{path}.{name}" if path else name
            key_name = _lookup(KEY_NAMES, model, name) or "KEY"
            for sub, sub_path in _nested(info.annotation, here, key_name):
                visit(sub, sub_path, (*stack, model))

    visit(root, "", ())
    for doc in docs.values():
        doc.paths.sort(key=lambda p: (p.count(".") + p.count("[]"), len(p)))
        first = doc.paths[0]
        for name, info in _documented_fields(doc.model):
            key = f"{doc.name}.{name}"
            doc.fields.append(
                FieldDoc(
                    key=key,
                    path=f"{first}.{name}" if first else name,
                    type=_type_text(info.annotation, info, docs),
                    default=_default_text(info, key),
                    description=_description(doc.model, name, info),
                )
            )
    return list(docs.values())


# ------------------------------------------------------------------------ rendering parts


def _link(model: type[BaseModel], docs: Mapping[type[BaseModel], ModelDoc]) -> str:
    doc = docs.get(model)
    name = model.__name__
    return f"[{name}](#{doc.anchor})" if doc is not None else name


def _plain_type(tp: Any, docs: Mapping[type[BaseModel], ModelDoc]) -> str:
    """A readable type: ``list[str]``, ``dict[str, FileSpec]``, ``str | list[str]``."""
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    if _is_model(tp):
        return _link(tp, docs)
    if tp is Path:
        return "path"
    origin, args = _origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if _is_union(tp):
        parts = [_plain_type(a, docs) for a in args if a is not type(None)]
        return " \\| ".join(parts)
    if origin in (list, tuple, set, frozenset, Sequence):
        inner = [a for a in args if a is not Ellipsis]
        if not inner:
            return "list"
        return f"list[{', '.join(_plain_type(a, docs) for a in inner)}]"
    if origin in (dict, Mapping):
        if len(args) == 2:
            return f"dict[{_plain_type(args[0], docs)}, {_plain_type(args[1], docs)}]"
        return "dict"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _constraints(info: FieldInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for meta in info.metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(meta, attr, None)
            if value is not None:
                out[attr] = value
    return out


def _type_text(tp: Any, info: FieldInfo, docs: Mapping[type[BaseModel], ModelDoc]) -> str:
    """The type plus its constraints: ``int >= 1``, ``str, not empty``."""
    text = _plain_type(tp, docs)
    c = _constraints(info)
    bounds = [
        f"{op} {_number(c[attr])}"
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if attr in c
    ]
    if bounds:
        text += " " + ", ".join(bounds)
    if "min_length" in c:
        n = c["min_length"]
        text += ", not empty" if n == 1 else f", at least {n} long"
    if "max_length" in c:
        text += f", at most {c['max_length']} long"
    if "pattern" in c:
        words = PATTERNS.get(c["pattern"])
        text += f": {words}" if words else f" matching `{_cell(c['pattern'])}`"
    return text


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _yaml(value: Any) -> str:
    """A default value in YAML flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z0-9_./-][A-Za-z0-9 _./-]*", value) and not value.endswith(" ")
        return value if plain else json.dumps(value)
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default_text(info: FieldInfo, key: str) -> str:
    if key in DEFAULT_TEXT:
        return DEFAULT_TEXT[key]
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "**required**"
    else:
        value = info.default
    if value is None:
        return "not set"
    if isinstance(value, BaseModel):
        return "its fields' defaults"
    return f"`{_cell(_yaml(value))}`"


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _clean(text: str) -> str:
    """Docstring text as one Markdown line: RST roles and literals made plain."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    text = text.replace("``", "`").replace("`None`", "not set")
    text = re.sub(r"\s*\(issue \d+\)", "", text)
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


@functools.cache
def _module_docstrings(filename: str) -> dict[str, dict[str, str]]:
    """Class name -> attribute name -> the string literal written right under it.

    Every top-level class of one source file, parsed once (no import, no execution).
    """
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"), filename=filename)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    out: dict[str, dict[str, str]] = {}
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        docs = out.setdefault(cls.name, {})
        for node, nxt in itertools.pairwise(cls.body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return out


def _attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """The attribute docstrings of ``model`` and its model bases, by attribute name."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            filename = inspect.getsourcefile(cls)
        except TypeError:  # a class without a source file
            continue
        if filename is not None:
            out.update(_module_docstrings(filename).get(cls.__qualname__, {}))
    return out


def _lookup(table: Mapping[str, str], model: type[BaseModel], name: str) -> str | None:
    """``table["Model.name"]`` for ``model`` or the model base that defines the field."""
    for cls in model.__mro__:
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            hit = table.get(f"{cls.__name__}.{name}")
            if hit is not None:
                return hit
    return None


def _description(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    text = info.description or _attribute_docstrings(model).get(name)
    if not text:
        text = _lookup(DESCRIPTIONS, model, name) or ""
    return _clean(text)


def _summary(model: type[BaseModel]) -> str:
    """The first paragraph of the model's docstring."""
    doc = inspect.getdoc(model) or ""
    first = doc.split("\n\n")[0]
    first = re.sub(r"\s*\(see the module doc\)", "", first)
    return _clean(first)


def _shorthand() -> str:
    """The one-string forms of checks, from the spec's own table (when it has one)."""
    table: Mapping[str, str] = getattr(task_checkspec, "_SHORTHAND", {})
    if not table:
        return ""
    forms = ", ".join(
        f'`{{{kind}: "X"}}` = `{{{kind}: {{{f}: "X"}}}}`' for kind, f in table.items()
    )
    return f"A string stands for the check's main field: {forms}."


# ------------------------------------------------------------------------ the document


def task_reference() -> str:
    """The Markdown field reference of task.yaml (what docs/tasks.md embeds)."""
    docs = reference_models()
    lines = [
        "<!-- generated by `python3 -m hazmat.tasks.reference`: edit the models, not this -->",
        "",
        "Every model below forbids unknown keys: a misspelled field is an error that names",
        "the file, the line and the field. Paths use `[]` for a list item and `<NAME>`",
        "for a key you choose (a file path, a service name). Fields marked",
        "**required** have no default; `not set` means the field is optional and off.",
        "",
        "Sections: " + ", ".join(f"[{d.name}](#{d.anchor})" for d in docs) + ".",
    ]
    for doc in docs:
        where = ", ".join(f"`{p}`" for p in doc.paths) if doc.paths[0] else "the top level"
        lines += ["", f'<a id="{doc.anchor}"></a>', "", f"### {doc.name}", ""]
        summary = _summary(doc.model)
        if summary:
            lines += [summary, ""]
        lines += [f"Used at: {where}.", ""]
        note = MODEL_NOTES.get(doc.name, "")
        if doc.model is task_checkspec.Check:
            note = " ".join(x for x in (note, _shorthand()) if x)
        if note:
            lines += [note, ""]
        lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
        for f in doc.fields:
            lines.append(
                f"| `{_cell(f.path)}` | {f.type} | {f.default} | {_cell(f.description) or '-'} |"
            )
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """``Model.field`` of every field that has no description anywhere (should be empty)."""
    return [f.key for d in reference_models() for f in d.fields if not f.description]


def section_of(text: str) -> str:
    """The text between :data:`BEGIN` and :data:`END` (without the marker lines).

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"expected one {BEGIN} and one {END} line")
    head, _, rest = text.partition(BEGIN)
    inner, _, _ = rest.partition(END)
    if END in head:
        raise ValueError(f"{END} comes before {BEGIN}")
    return inner.removeprefix("\n")


def replace_section(text: str, reference: str) -> str:
    """``text`` with the part between the markers replaced by ``reference``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    section_of(text)
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{reference}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: print the reference, ``--write FILE`` or ``--check FILE``.

    Returns the exit code: 0 done, 1 the file's section drifted (``--check``), 2 the file
    cannot be read or has no reference markers.
    """
    parser = argparse.ArgumentParser(
        prog="python3 -m hazmat.tasks.reference",
        description="The task.yaml field reference, generated from the models.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", type=Path, help="rewrite FILE's section")
    group.add_argument(
        "--check", metavar="FILE", type=Path, help="exit 1 if FILE's section drifted"
    )
    args = parser.parse_args(argv)
    reference = task_reference()
    target: Path | None = args.write or args.check
    if target is None:
        sys.stdout.write(reference)
        return 0
    try:
        text = target.read_text(encoding="utf-8")
        current = section_of(text)
    except (OSError, ValueError) as exc:
        print(f"error: {target}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if current != reference:
            print(
                f"error: {target}: the field reference is out of date; run: {COMMAND}",
                file=sys.stderr,
            )
            return 1
        return 0
    if current != reference:
        target.write_text(replace_section(text, reference), encoding="utf-8")
        print(f"{target}: reference updated", file=sys.stderr)
    else:
        print(f"{target}: reference already current", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

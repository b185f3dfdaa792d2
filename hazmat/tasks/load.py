"""Loading ``task.yaml`` files into :class:`~hazmat.tasks.spec.Task`.

Every problem becomes one :class:`~hazmat.errors.SpecError` whose message starts
with ``FILE:LINE: FIELD:``, e.g.
``tasks/x/task.yaml:14: milestones[2].check: unknown check type 'sandboxx'``.
Lines come from the YAML node tree (``yaml.compose``), so pydantic's error
locations map back to the line where the offending key or item starts.

Besides schema validation, loading checks what a schema cannot: duplicate keys,
unknown or malformed ``{{placeholders}}``, ``python`` checks whose function is not
defined in the task folder's ``checks.py``, task tools missing from ``tools.py``.
Nothing from the task folder is executed while loading.

File conveniences resolved here (see :mod:`hazmat.tasks.files`): a ``sandbox.files``
(or service ``files``) entry ``{source: rel/path}`` is read from the task folder (or a
suite ``lib/`` folder), byte for byte unless ``render: true``; a service's relative
``build`` folder and ``sandbox.build.dockerfile`` are made absolute; a solution step's
``from_file: {ARG: path}`` is read into its argument.

A task with ``variants:`` loads as one task per variant (:func:`load_variants`), with
ids ``category/name@variant`` (see :mod:`hazmat.tasks.variants`).
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hazmat.errors import SpecError
from hazmat.tasks.checkspec import Check
from hazmat.tasks.files import LIB, expand_files, resolve_source
from hazmat.tasks.placeholders import CAPTURED, PlaceholderError, find_placeholders
from hazmat.tasks.spec import Task
from hazmat.tasks.variants import MERGED, VariantError, apply_variant, split_ref

__all__ = ["TASK_FILE", "discover_tasks", "load_task", "load_variants", "suite_root"]

TASK_FILE = "task.yaml"

Loc = tuple[str | int, ...]

_TYPE_TAG = re.compile(r"^([a-z-]+\[.*\]|str|int|float|bool|list|dict|none|tuple)$")
_PREFIX_PATH = re.compile(r"^(?P<path>[A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*): (?P<msg>.*)$", re.S)
_PATTERN_TEXT = {
    "id": "lowercase letters, digits and . _ - in parts separated by /",
    "category": "lowercase letters, digits, _ and -",
    "name": "a Python identifier",
    "function": "a Python identifier",
}


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_]\w*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _parse_field(path: str) -> Loc:
    loc: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_]\w*)|\[(\d+)\]", path):
        loc.append(int(index) if index else name)
    return tuple(loc)


class _Source:
    """One YAML file: its text, node tree and data."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.name = _display(file)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError("no such file", file=self.name) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read: {exc}", file=self.name) from None
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                self._check_keys(node, ())
            data = loader.construct_document(node) if node is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = exc.problem or exc.context or "invalid YAML"
            ctx_mark = exc.context_mark
            if (
                exc.problem
                and exc.context
                and ctx_mark is not None
                and mark is not None
                and ctx_mark.line != mark.line
            ):
                problem += f" ({exc.context} started on line {ctx_mark.line + 1})"
            raise SpecError(f"YAML syntax error: {problem}", file=self.name, line=line) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"YAML error: {exc}", file=self.name) from None
        finally:
            loader.dispose()
        if node is None:
            raise SpecError("the file is empty", file=self.name, line=1)
        if not isinstance(data, dict):
            raise SpecError(
                "a task file is a mapping (id: ..., title: ...)",
                file=self.name,
                line=node.start_mark.line + 1,
            )
        self.node: yaml.Node = node
        self.data: dict[str, Any] = data
        self.variant: str | None = None
        """Set while a variant is loaded: locations it overrides map into ``variants``."""

    def where(self, loc: Loc) -> Loc:
        """``loc`` in the YAML: inside ``variants.NAME`` when the variant sets it."""
        if self.variant is None or not loc:
            return loc
        node: Any = (self.data.get("variants") or {}).get(self.variant) or {}
        for part in loc:
            found = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            if found:
                node = node[part]
            elif part == loc[0] or loc[0] in MERGED:
                return loc  # not set by the variant (a merged mapping keeps the base's)
            else:
                break  # inside a field the variant replaced
        return ("variants", self.variant, *loc)

    def error(self, loc: Loc, message: str, *, hint: str | None = None) -> SpecError:
        """A SpecError at ``loc`` (line found in the node tree)."""
        loc = self.where(loc)
        return SpecError(message, file=self.name, line=self.line(loc), field=_field(loc), hint=hint)

    def _check_keys(self, node: yaml.Node, loc: Loc) -> None:
        """Reject duplicate keys and bad placeholders, with their lines."""
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark)
                if k in seen:
                    raise SpecError(
                        f"duplicate key {k!r}",
                        file=self.name,
                        line=key.start_mark.line + 1,
                        field=_field(loc),
                    )
                seen.add(k)
                self._check_keys(key, loc)
                self._check_keys(value, (*loc, k))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._check_keys(item, (*loc, i))
        elif isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            in_solution = "solution" in loc[:3]
            try:
                for ph in find_placeholders(node.value):
                    if ph.kind == CAPTURED and not in_solution:
                        raise PlaceholderError(
                            f"{ph.text} is only for solution steps (a value a step captured)"
                        )
            except PlaceholderError as exc:
                raise SpecError(
                    str(exc), file=self.name, line=node.start_mark.line + 1, field=_field(loc)
                ) from None

    def line(self, loc: Loc) -> int:
        """The 1-based line where the deepest existing part of ``loc`` starts."""
        node = self.node
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        line = key.start_mark.line + 1
                        node = value
                        break
                else:
                    continue  # a union tag or a missing key: stay here
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                continue
        return line


def _message(err: dict[str, Any]) -> tuple[Loc, str]:
    """Turn one pydantic error into (location, message)."""
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _TYPE_TAG.match(p)))
    kind: str = err["type"]
    msg: str = err["msg"]
    if kind == "extra_forbidden":
        return loc, "unknown field"
    if kind == "missing":
        return loc, "required field missing"
    if kind in ("value_error", "assertion_error"):
        msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
        if not loc:
            m = _PREFIX_PATH.match(msg)
            if m:
                return _parse_field(m.group("path")), m.group("msg")
        return loc, msg
    if kind == "string_pattern_mismatch":
        last = next((p for p in reversed(loc) if isinstance(p, str)), "")
        what = _PATTERN_TEXT.get(last, f"pattern {err.get('ctx', {}).get('pattern', '')}")
        return loc, f"{err.get('input')!r} is not valid ({what})"
    return loc, msg[:1].lower() + msg[1:]


def _known_fields(model: type[BaseModel] | None) -> list[str]:
    return list(model.model_fields) if model is not None else []


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (best effort, for hints)."""
    model: Any = Task
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            continue  # a mapping key (a file path, a service name): same model
        ann = field.annotation
        model = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            for inner in (cand, *getattr(cand, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
                    break
            if model is not None:
                break
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _absolute(rel: Any, root: Path, src: _Source, loc: Loc) -> Any:
    if not isinstance(rel, str) or os.path.isabs(rel):
        return rel
    try:
        return str(resolve_source(rel, root))
    except ValueError as exc:
        raise src.error(loc, str(exc)) from None


def _preprocess(data: dict[str, Any], root: Path, src: _Source, at: Loc = ()) -> dict[str, Any]:
    """Resolve files, build folders and solution files (``at``: where these fields are
    in the YAML, for a variant's own overrides)."""

    def fail(loc: Loc, message: str) -> SpecError:
        return src.error((*at, *loc), message)

    data = dict(data)
    sandbox = data.get("sandbox")
    if isinstance(sandbox, dict):
        sandbox = dict(sandbox)
        if "files" in sandbox:
            sandbox["files"] = expand_files(sandbox["files"], root, ("sandbox", "files"), fail)
        build = sandbox.get("build")
        if isinstance(build, dict) and "dockerfile" in build:
            where = (*at, "sandbox", "build", "dockerfile")
            build = dict(build, dockerfile=_absolute(build["dockerfile"], root, src, where))
            sandbox["build"] = build
        services = sandbox.get("services")
        if isinstance(services, dict):
            new: dict[Any, Any] = {}
            for name, svc in services.items():
                if isinstance(svc, dict):
                    svc = dict(svc)
                    loc: Loc = ("sandbox", "services", name)
                    if "files" in svc:
                        svc["files"] = expand_files(svc["files"], root, (*loc, "files"), fail)
                    build_dir = svc.get("build")
                    if isinstance(build_dir, str) and not os.path.isabs(build_dir):
                        svc["build"] = str((root / build_dir).resolve())
                new[name] = svc
            sandbox["services"] = new
        data["sandbox"] = sandbox
    solution = data.get("solution")
    if isinstance(solution, list):
        data["solution"] = [_step_files(step, i, root, fail) for i, step in enumerate(solution)]
    return data


def _step_files(step: Any, i: int, root: Path, fail: Any) -> Any:
    """``from_file: {ARG: path}``: the file's text becomes the argument."""
    if not isinstance(step, dict) or not isinstance(step.get("from_file"), dict):
        return step
    step = dict(step)
    for arg, rel in step["from_file"].items():
        loc = ("solution", i, "from_file", arg)
        try:
            text = resolve_source(str(rel), root).read_text(encoding="utf-8")
        except ValueError as exc:
            raise fail(loc, str(exc)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(loc, f"cannot read {rel!r}: {exc.__class__.__name__}") from None
        step[arg] = text
    return step


def _check_dockerfile(task: Task, src: _Source) -> None:
    build = task.sandbox.build
    if build is None or build.dockerfile is None:
        return
    from hazmat.tasks.environment import check_dockerfile

    try:
        check_dockerfile(Path(build.dockerfile))
    except ValueError as exc:
        raise src.error(("sandbox", "build", "dockerfile"), str(exc)) from None


def _functions(path: Path) -> set[str] | None:
    """Top-level function names defined in a Python file, without running it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        return None
    except SyntaxError as exc:
        raise SpecError(f"syntax error: {exc.msg}", file=_display(path), line=exc.lineno) from None
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _checks_with_loc(check: Check, loc: Loc) -> Iterator[tuple[Loc, Check]]:
    yield loc, check
    kind = check.kind
    for i, child in enumerate(check.children):
        yield from _checks_with_loc(child, (*loc, kind, i))


def _check_code(task: Task, root: Path, src: _Source) -> None:
    checks_file = root / "checks.py"
    functions: set[str] | None = None
    loaded = False
    for i, m in enumerate(task.milestones):
        for loc, check in _checks_with_loc(m.check, ("milestones", i, "check")):
            if check.python is None:
                continue
            if not loaded:
                functions, loaded = _functions(checks_file), True
            name = check.python.function
            if functions is None:
                raise src.error(loc, f"python check {name!r} needs {_display(checks_file)}")
            if name not in functions:
                raise src.error(loc, f"function {name!r} is not defined in checks.py")
    if task.task_tools:
        tools_file = root / "tools.py"
        tool_functions = _functions(tools_file)
        for i, tool in enumerate(task.task_tools):
            loc = ("task_tools", i)
            if tool_functions is None:
                raise src.error(loc, f"task tool {tool.name!r} needs {_display(tools_file)}")
            if tool.function_name not in tool_functions:
                raise src.error(loc, f"function {tool.function_name!r} is not defined in tools.py")


def load_task(path: Path, variant: str | None = None) -> Task:
    """Load one task from its ``task.yaml`` or from the folder holding it; with
    ``variant``, that variant of it (id ``...@variant``).

    The returned task still holds its ``{{placeholders}}``; see
    :func:`hazmat.tasks.render.render_task` for one episode's values. Without
    ``variant`` a task with variants loads as its base (use :func:`load_variants`).

    Raises:
        SpecError: the file is missing, is not valid YAML, or does not validate (the
            message names the file, the line and the field), or has no such variant.
    """
    path = Path(path)
    file = path / TASK_FILE if path.is_dir() else path
    src = _Source(file)
    root = file.parent.resolve()
    data = src.data
    for key in ("root", "variant"):
        if key in data:
            raise src.error((key,), "unknown field")
    if variant is not None:
        try:
            data, _ = apply_variant(data, variant)
        except KeyError:
            names = ", ".join(data.get("variants") or {}) or "none"
            raise SpecError(
                f"no variant {variant!r} (variants: {names})", file=src.name, field="variants"
            ) from None
        except VariantError as exc:
            raise src.error(exc.loc, exc.message) from None
        src.variant = variant
    data = _preprocess(data, root, src)
    try:
        task = Task.model_validate({**data, "root": root, "variant": variant})
    except ValidationError as exc:
        raise _first_error(exc, src) from None
    _check_code(task, root, src)
    _check_dockerfile(task, src)
    return task


def load_variants(path: Path) -> list[Task]:
    """Every variant of the task at ``path`` (the task itself when it has none).

    Raises:
        SpecError: as :func:`load_task`.
    """
    base = load_task(path)
    if not base.variants:
        return [base]
    return [load_task(path, name) for name in base.variants]


def _first_error(exc: ValidationError, src: _Source) -> SpecError:
    found: list[tuple[bool, int, int, Loc, str]] = []
    meant: set[Loc] = set()  # fields a misspelt key stands for: not also "missing"
    for n, err in enumerate(exc.errors()):
        loc, message = _message(dict(err))
        if err["type"] == "extra_forbidden" and loc:
            model = _model_at(loc)
            close = difflib.get_close_matches(str(loc[-1]), _known_fields(model), n=1)
            if close:
                message += f", did you mean {close[0]!r}?"
                meant.add(src.where((*loc[:-1], close[0])))
        loc = src.where(loc)
        # "missing" last: a typo'd key is reported as unknown, not as the missing one
        found.append((err["type"] == "missing", src.line(loc), n, loc, message))
    found = [f for f in found if not (f[0] and f[3] in meant)] or found
    found.sort(key=lambda t: t[:3])
    _, line, _, loc, message = found[0]
    distinct = list(dict.fromkeys((f[1], f[3], f[4]) for f in found))
    more = len({(d[0], d[1]) for d in distinct}) - 1
    hint = f"{more} more problem(s) in this file; hazmat validate shows all" if more > 0 else None
    error = SpecError(message, file=src.name, line=line, field=_field(loc), hint=hint)
    error.problems = [
        SpecError(m, file=src.name, line=ln, field=_field(lc)).message for ln, lc, m in distinct
    ]
    return error


def suite_root() -> Path:
    """The task suite shipped with hazmat: ``hazmat/suite`` of an installed package (in a
    checkout, a link to its ``tasks/`` folder)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "suite", package.parent / "tasks"):
        if candidate.is_dir():
            return candidate
    return package / "suite"


def discover_tasks(paths: list[Path]) -> list[Task]:
    """Load every task under ``paths`` (task.yaml files, task folders, or trees of them).

    A folder holding ``task.yaml`` is one task, or one task per variant (its subfolders
    are not searched); ``folder@variant`` is that variant alone; any other folder is
    searched recursively, skipping hidden folders and ``lib/``. The result is sorted
    by task id.

    Raises:
        SpecError: a path does not exist, a task does not load, or two tasks share an id.
    """
    files: list[tuple[Path, str | None]] = []
    for p in paths:
        p = Path(p)
        head, variant = split_ref(str(p))
        if not p.exists() and variant is not None and Path(head).exists():
            p = Path(head)
        else:
            variant = None
        if p.is_file():
            files.append((p, variant))
        elif (p / TASK_FILE).is_file():
            files.append((p / TASK_FILE, variant))
        elif p.is_dir():
            files.extend((f, None) for f in _walk(p))
        else:
            raise SpecError("no such file or folder", file=_display(p))
    tasks: dict[str, Task] = {}
    seen: set[tuple[Path, str | None]] = set()
    for f, variant in files:
        if (f.resolve(), variant) in seen:
            continue
        seen.add((f.resolve(), variant))
        for task in [load_task(f, variant)] if variant else load_variants(f):
            if task.id in tasks:
                other = tasks[task.id].root
                raise SpecError(
                    f"task id {task.id!r} is also used by {_display(other) if other else '?'}",
                    file=_display(f),
                    field="id",
                )
            tasks[task.id] = task
    return [tasks[k] for k in sorted(tasks)]


def _walk(folder: Path) -> Iterator[Path]:
    if (folder / TASK_FILE).is_file():
        yield folder / TASK_FILE
        return
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith((".", "__")) and child.name != LIB:
            yield from _walk(child)

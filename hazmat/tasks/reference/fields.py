"""The walk over :class:`~hazmat.tasks.spec.Task` and every model reachable from its fields,
and each field's row: its path in task.yaml, its type, its default and its description
(``Field(description=...)``, else the attribute docstring, else the tables of words).
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import json
import re
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
from hazmat.tasks.reference.words import DEFAULT_TEXT, DESCRIPTIONS, KEY_NAMES, PATTERNS
from hazmat.tasks.spec import Task

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

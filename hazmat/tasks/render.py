"""One episode's view of a task: every ``{{placeholder}}`` replaced by its value.

::

    rendered = render_task(task, seed=1234)
    rendered.task.instructions          # placeholders substituted everywhere
    rendered.secrets["flag"]            # 'HZM{...}' - watch it (policy), redact it (record)
    rendered.canaries                   # values of every {{canary:NAME}}

Strings of task.yaml are substituted everywhere they appear: instructions, hints,
sandbox files given inline or marked ``render: true`` (paths and contents), setup,
env, services, checks, questions, the solution, the policy mapping. Files copied
byte for byte (base64 or by hash) are never touched. In regex fields of checks
(``stdout_regex``, ``regex``, ``command_regex``, ``args``) and regex answers the values
are ``re.escape``d, so ``regex: "{{flag}}"`` matches the flag literally.
``{{captured.NAME}}`` stays for the solution player; ``\\{{`` becomes a literal ``{{``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from hazmat.sandbox.base import FileSpec
from hazmat.tasks.checkspec import (
    FileCheck,
    OutputCheck,
    SandboxCheck,
    SubmissionCheck,
    TraceCheck,
)
from hazmat.tasks.placeholders import SECRET_KINDS, Values, find_placeholders, substitute
from hazmat.tasks.questions import Question
from hazmat.tasks.spec import Task

__all__ = ["RenderedTask", "render_task", "render_text"]

_REGEX_MODELS = (SandboxCheck, FileCheck, TraceCheck, OutputCheck, SubmissionCheck)
_REGEX_FIELDS = frozenset({"stdout_regex", "regex", "command_regex", "args"})
_SKIP = frozenset({"variants", "root", "provenance"})


class RenderedTask(BaseModel):
    """A task with one episode's values substituted, plus those values."""

    model_config = ConfigDict(frozen=True)

    task: Task
    seed: int
    secrets: dict[str, str]
    """Secret values by key (``flag``, ``canary:w``, ``password:db``): watch and redact these."""
    values: dict[str, str]
    """Every placeholder value used, secret or not (``number:x``, ``port:web``, ``seed``)."""

    @property
    def canaries(self) -> dict[str, str]:
        """The ``{{canary:NAME}}`` values by NAME (``canary`` alone under ``"canary"``)."""
        out: dict[str, str] = {}
        for key, value in self.secrets.items():
            kind, _, name = key.partition(":")
            if kind == "canary":
                out[name or "canary"] = value
        return out


def _render(obj: Any, values: Values, regex: bool = False) -> Any:
    if isinstance(obj, str):
        return substitute(obj, values, regex=regex)
    if isinstance(obj, FileSpec) and (obj.encoding != "utf-8" or obj.host_path is not None):
        return obj  # copied byte for byte
    if isinstance(obj, BaseModel):
        cls = type(obj)
        is_regex_model = isinstance(obj, _REGEX_MODELS)
        fields = {
            name: getattr(obj, name)
            if name in _SKIP
            else _render(
                getattr(obj, name),
                values,
                regex=(is_regex_model and name in _REGEX_FIELDS)
                or (isinstance(obj, Question) and obj.match == "regex" and name == "answer"),
            )
            for name in cls.model_fields
        }
        return cls.model_construct(_fields_set=set(obj.model_fields_set), **fields)
    if isinstance(obj, dict):
        # keys are substituted too (file paths), never as regexes
        return {_render(k, values): _render(v, values, regex) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_render(v, values, regex) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_render(v, values, regex) for v in obj)
    if isinstance(obj, Path):
        return obj
    return obj


def render_text(text: str, seed: int) -> str:
    """Substitute the placeholders of one string for the episode ``seed``.

    Raises:
        PlaceholderError: a malformed or unknown placeholder.
    """
    return substitute(text, Values(seed))


def render_task(task: Task, seed: int) -> RenderedTask:
    """Substitute every placeholder of ``task`` with the values of episode ``seed``.

    Deterministic: the same task and seed give an equal result. Placeholders were
    validated when the task loaded, so this does not raise for loaded tasks.
    """
    values = Values(seed)
    # make sure every placeholder mentioned anywhere gets a value, in document order
    rendered: Task = _render(task, values)
    used = values.used()
    secrets = {k: v for k, v in used.items() if k.partition(":")[0] in SECRET_KINDS}
    return RenderedTask(task=rendered, seed=seed, secrets=secrets, values=used)


def placeholders_in(task: Task) -> set[str]:
    """Keys (``kind`` / ``kind:name``) of every placeholder the task mentions."""
    keys: set[str] = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, str):
            keys.update(ph.key for ph in find_placeholders(obj) if ph.kind != "captured")
        elif isinstance(obj, FileSpec) and (obj.encoding != "utf-8" or obj.host_path):
            return
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                if name not in _SKIP:
                    walk(getattr(obj, name))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(k)
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v)

    walk(task)
    return keys

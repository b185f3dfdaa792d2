"""What every importer shares: the import report, readable task.yaml writing, escaping.

An importer turns one benchmark's tasks into ordinary hazmat task folders (``task.yaml``
plus the files it names) that a person can read and edit, and says in an
:class:`ImportReport` what it mapped, what it dropped and why, which tasks it skipped,
and every service it rewrote. ``hazmat import`` writes the report next to the tasks as
``import-report.json`` and ``IMPORT.md``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

__all__ = [
    "Dropped",
    "ImportReport",
    "ImportedTask",
    "Rewrite",
    "Skipped",
    "copy_tree",
    "demote",
    "escape_text",
    "slug",
    "write_task_yaml",
]


class Dropped(BaseModel):
    """Something of the source the task does not carry, and why."""

    what: str
    why: str


class Rewrite(BaseModel):
    """A service rebuilt on the hazmat base because its image cannot be pulled here."""

    service: str
    original: str
    """The original image or ``FROM`` line(s)."""
    rebuilt_on: str
    changes: list[str] = Field(default_factory=list)


class ImportedTask(BaseModel):
    """One task written: where, from what, and what became of its parts."""

    id: str
    source_id: str
    folder: str
    variants: list[str] = Field(default_factory=list)
    mapped: list[str] = Field(default_factory=list)
    dropped: list[Dropped] = Field(default_factory=list)
    rewrites: list[Rewrite] = Field(default_factory=list)
    solution: str = "unproven"
    """``proven`` (the solution derives its answers from what it runs), ``unproven``
    (it hands over literal answers), with the reason in ``solution_note``."""
    solution_note: str = ""
    fallback: dict[str, list[dict[str, Any]]] = Field(default_factory=dict, exclude=True)
    """For a proven candidate: the literal solution (per variant, ``""`` for the base) it
    falls back to when ``--check`` finds that its script does not yield the answer."""


class Skipped(BaseModel):
    """A source task that was not imported, and why."""

    source_id: str
    reason: str


class ImportReport(BaseModel):
    """What ``hazmat import`` did."""

    source: str
    path: str
    out: str
    licence: str
    tasks: list[ImportedTask] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Imported, with a proven / unproven solution, skipped, service rewrites."""
        return {
            "imported": len(self.tasks),
            "proven": sum(t.solution == "proven" for t in self.tasks),
            "unproven": sum(t.solution != "proven" for t in self.tasks),
            "skipped": len(self.skipped),
            "service_rewrites": sum(len(t.rewrites) for t in self.tasks),
        }

    def write(self, out: Path) -> None:
        """Write ``import-report.json`` and ``IMPORT.md`` into ``out``."""
        data = {"counts": self.counts, **self.model_dump()}
        (out / "import-report.json").write_text(json.dumps(data, indent=2) + "\n")
        (out / "IMPORT.md").write_text(self.markdown())

    def markdown(self) -> str:
        """The report for people."""
        c = self.counts
        lines = [
            f"# Imported from {self.source}",
            "",
            f"Source: `{self.path}` (licence: {self.licence}).",
            "",
            f"{c['imported']} task(s) imported ({c['proven']} with a proven solution, "
            f"{c['unproven']} unproven), {c['skipped']} skipped, "
            f"{c['service_rewrites']} service rewrite(s).",
            "",
        ]
        lines += [f"- {n}" for n in self.notes]
        if self.notes:
            lines.append("")
        lines += ["## Tasks", ""]
        for t in self.tasks:
            variants = f" (variants: {', '.join(t.variants)})" if t.variants else ""
            lines.append(f"### `{t.id}` from {t.source_id}{variants}")
            lines.append("")
            lines.append(f"- folder: `{t.folder}`")
            lines.append(
                f"- solution: {t.solution}" + (f" ({t.solution_note})" if t.solution_note else "")
            )
            for m in t.mapped:
                lines.append(f"- mapped: {m}")
            for d in t.dropped:
                lines.append(f"- dropped: {d.what}: {d.why}")
            for r in t.rewrites:
                lines.append(
                    f"- service `{r.service}` rebuilt on {r.rebuilt_on} (was {r.original})"
                )
                lines += [f"  - {ch}" for ch in r.changes]
            lines.append("")
        if self.skipped:
            lines += ["## Skipped", ""]
            lines += [f"- {s.source_id}: {s.reason}" for s in self.skipped]
            lines.append("")
        return "\n".join(lines)


def slug(text: str) -> str:
    """A task-id part made from ``text`` (lowercase letters, digits, ``-``)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out or "task"


def escape_text(text: str) -> str:
    """Text as a task.yaml text field: a literal ``{{`` escaped (``\\{{``)."""
    return text.replace("{{", "\\{{")


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &anchors: every field is written out where it belongs


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not value.startswith((" ", "\t")) else None
    if style and any(ord(c) < 32 and c not in "\n\t" for c in value):
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    short = all(isinstance(v, str | int | float) and len(str(v)) < 40 for v in value)
    flow = bool(value) and short and sum(len(str(v)) + 2 for v in value) < 90
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def write_task_yaml(folder: Path, data: dict[str, Any], header: str = "") -> Path:
    """Write ``data`` as ``folder/task.yaml`` (fields in the given order, multi-line text
    as blocks), with ``header`` as comment lines on top. Returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path = folder / "task.yaml"
    path.write_text(comment + text)
    return path


def copy_tree(src: Path, dest: Path, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """Copy the files under ``src`` into ``dest`` (symlinks followed only inside ``src``;
    names in ``skip`` left out at any depth). Returns the copied relative paths."""
    copied: list[str] = []
    root = src.resolve()
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part in skip for part in rel.parts) or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        target.chmod((path.stat().st_mode & 0o777) | 0o600)
        copied.append(rel.as_posix())
    return copied


def demote(entry: ImportedTask, reason: str) -> None:
    """Give a proven candidate its literal solution back (``entry.fallback``), rewriting
    its task.yaml (comments on top kept), and mark it unproven with ``reason``."""
    path = Path(entry.folder) / "task.yaml"
    text = path.read_text(encoding="utf-8")
    header = "\n".join(
        line[2:] if line.startswith("# ") else ""
        for line in text.splitlines()
        if line.startswith("#")
    )
    data = yaml.safe_load(text)
    for variant, steps in entry.fallback.items():
        if variant == "":
            data["solution"] = steps
        else:
            data.setdefault("variants", {}).setdefault(variant, {})["solution"] = steps
    entry.solution = "unproven"
    entry.solution_note = reason
    entry.mapped = [f"{m}; not kept: {reason}" if "captured" in m else m for m in entry.mapped]
    prov = data.get("provenance")
    if isinstance(prov, dict):
        prov["notes"] = [f"solution: unproven ({reason})"]
    write_task_yaml(path.parent, data, header=header)

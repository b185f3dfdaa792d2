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

from hazmat.tasks.reference.document import (
    BEGIN,
    COMMAND,
    END,
    main,
    replace_section,
    section_of,
    task_reference,
    undocumented,
)
from hazmat.tasks.reference.fields import FieldDoc, ModelDoc, reference_models
from hazmat.tasks.reference.words import DESCRIPTIONS, KEY_NAMES

__all__ = [
    "BEGIN",
    "COMMAND",
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

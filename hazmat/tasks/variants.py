"""Variants: one task folder, several named versions of the task.

::

    variants:
      easy:
        instructions: "... (the long, helpful prompt)"
        hints: [Look at the imports of source.py]
      hard:
        limits: {steps: 15}
        sandbox: {files: {/home/agent/extra.txt: {source: extra.txt}}}
        questions: {mode: unguided}

A variant overrides fields of the task: mappings (``limits``, ``sandbox``, ``questions``,
``scoring``, ``sandbox.files``) merge key by key, everything else is replaced. The
variant ``easy`` of task ``cyber/x`` is the task ``cyber/x@easy``; ``hazmat list`` and
runs name it so, and a path ``tasks/cyber/x@easy`` loads just that variant. A task with
variants is run as its variants (the base alone is not a task of its own).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MERGED", "OVERRIDABLE", "VariantError", "apply_variant", "split_ref"]

OVERRIDABLE = frozenset(
    {
        "title",
        "description",
        "difficulty",
        "human_minutes",
        "tags",
        "instructions",
        "hints",
        "limits",
        "sandbox",
        "tools",
        "questions",
        "milestones",
        "scoring",
        "solution",
        "policy",
    }
)
"""The fields a variant may override."""


class VariantError(ValueError):
    """A variant that cannot be applied; ``loc`` is where in task.yaml."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


MERGED = frozenset({"limits", "sandbox", "questions", "scoring", "files", "env"})
"""Mappings a variant merges into the task's (key by key) instead of replacing."""


def _merge(base: Any, over: Any, key: str) -> Any:
    if key in MERGED and isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v, str(k))
        return out
    return over


def apply_variant(data: dict[str, Any], name: str) -> tuple[dict[str, Any], set[str]]:
    """The task data of variant ``name``: ``data`` with the variant's overrides applied,
    its id suffixed ``@name``, and no ``variants``. Also returns the overridden fields.

    Raises:
        KeyError: there is no such variant.
        VariantError: the variant is not a mapping or overrides a field it may not
            (e.g. ``id``).
    """
    variants = data.get("variants")
    if not isinstance(variants, dict) or name not in variants:
        raise KeyError(name)
    over = variants[name] if variants[name] is not None else {}
    if not isinstance(over, dict):
        raise VariantError(("variants", name), "a variant is a mapping of fields to override")
    for key in over:
        if key not in OVERRIDABLE:
            raise VariantError(
                ("variants", name, key),
                f"a variant cannot override {key!r} "
                f"(it may override: {', '.join(sorted(OVERRIDABLE))})",
            )
    out = {k: v for k, v in data.items() if k != "variants"}
    for key, value in over.items():
        out[key] = _merge(out.get(key), value, key)
    if isinstance(out.get("id"), str):
        out["id"] = f"{out['id']}@{name}"
    return out, set(over)


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"tasks/x@easy"`` -> ``("tasks/x", "easy")``; no ``@`` -> ``(ref, None)``."""
    head, sep, tail = ref.rpartition("@")
    if not sep or not head or "/" in tail:
        return ref, None
    return head, tail

"""The hazmat exception tree.

Every error hazmat raises on purpose derives from :class:`HazmatError`. The CLI
turns any of them into one line (``error: <message>``) and a non-zero exit code,
never a traceback, and never loses what was already recorded.

::

    HazmatError
    ├── ConfigError                 bad input from a person: flags, files, specs
    │   ├── SpecError               a task.yaml / policy / spec that does not validate
    │   └── UnknownBackendError     a sandbox backend name that is not registered
    ├── SandboxError                a sandbox could not be made, used or cleaned up
    │   ├── BackendUnavailableError the backend cannot run here (no daemon, no namespaces)
    │   ├── ImageError              the sandbox image is missing, stale or failed to build
    │   ├── SandboxStartError       the sandbox failed while starting (setup, health check)
    │   ├── SandboxClosedError      the sandbox was used after it stopped
    │   └── FileTooLargeError       read_file / write_file over the configured cap
    ├── ToolError                   an agent-facing tool was called wrongly (the model is told)
    ├── ModelError                  the model endpoint failed after bounded retries
    ├── MonitorError                an after-step monitor or the network sentinel broke
    ├── PolicyError                 a policy failed to load or a rule raised (fail closed)
    ├── RecordError                 the record cannot be written or does not verify
    └── ReplayError                 a recorded run cannot be replayed as asked

Each error carries a message that says what went wrong and, where a person can
act on it, how to fix it (``hint``).
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "FileTooLargeError",
    "HazmatError",
    "ImageError",
    "ModelError",
    "MonitorError",
    "PolicyError",
    "RecordError",
    "ReplayError",
    "SandboxClosedError",
    "SandboxError",
    "SandboxStartError",
    "SpecError",
    "ToolError",
    "UnknownBackendError",
]


class HazmatError(Exception):
    """Root of every error hazmat raises on purpose.

    ``hint`` is an optional sentence telling a person how to fix the problem;
    ``exit_code`` is what the CLI exits with when this error reaches it.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The error as the single line the CLI prints (message, then hint)."""
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text = f"{text} ({self.hint.strip()})"
        return text


class ConfigError(HazmatError):
    """Bad input from a person: a flag, a file or a spec that cannot be used."""

    exit_code = 2


class SpecError(ConfigError):
    """A spec file that does not validate.

    The message starts with ``FILE:LINE: FIELD:`` when those are known, e.g.
    ``tasks/x/task.yaml:14: milestones[2].check: unknown check type 'sandboxx'``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        prefix = ""
        if file is not None:
            prefix = f"{file}:{line}: " if line is not None else f"{file}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message, hint=hint)
        self.reason = message
        self.problems: list[str] = [prefix + message]
        """Every problem found in the file, each as ``FILE:LINE: FIELD: message`` (the
        first is this error's own message)."""


class UnknownBackendError(ConfigError):
    """A sandbox backend name that is not registered."""


class SandboxError(HazmatError):
    """A sandbox could not be made, used or cleaned up."""

    exit_code = 3


class BackendUnavailableError(SandboxError):
    """The backend cannot run on this machine (no Docker daemon, no namespaces)."""


class ImageError(SandboxError):
    """The sandbox image is missing, stale, or failed to build."""


class SandboxStartError(SandboxError):
    """The sandbox failed while starting: a setup command or a health check failed."""


class SandboxClosedError(SandboxError):
    """The sandbox was used after it was stopped (or before it was started)."""


class FileTooLargeError(SandboxError):
    """A file read or written through the sandbox is larger than the configured cap."""


class ToolError(HazmatError):
    """An agent-facing tool was called wrongly; the model is told and the episode goes on."""


class ModelError(HazmatError):
    """The model endpoint failed after bounded retries (HTTP 429/5xx, timeouts)."""

    exit_code = 4


class MonitorError(HazmatError):
    """An after-step monitor or the network sentinel stopped working.

    A harness fault, never the agent's doing: the episode ends ``error`` (and
    ``hazmat run --resume --retry-errors`` runs it again), it is not halted.
    """


class PolicyError(HazmatError):
    """A policy failed to load, or a rule or detector raised while deciding (fail closed)."""


class RecordError(HazmatError):
    """The record cannot be written, read, or does not verify."""

    exit_code = 5


class ReplayError(HazmatError):
    """A recorded run cannot be replayed as asked (image gone, episode unknown)."""

"""The small tables that only add words where the models have none: names of mapping keys
in paths, defaults shown otherwise, patterns, notes under a section, and descriptions
of fields that carry none of their own.
"""

from __future__ import annotations

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

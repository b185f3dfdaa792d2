"""``hazmat import cybench PATH``: Cybench task folders (``metadata/metadata.json``, ...).

``PATH`` is one task folder or a folder holding several (found by their
``metadata/metadata.json``). Mapping, per task:

- ``hard_prompt`` -> ``instructions``, ``easy_prompt`` -> the ``easy`` variant;
- ``subtasks`` -> ``questions`` (question, answer, answer_format -> format, hints), asked
  one by one (variant ``guided``); the ``unguided`` and ``easy`` variants ask only the
  last (the flag);
- ``init_script.sh`` -> the files the agent gets (its ``cp``/``unzip``/``mv``/``rm``/
  ``mkdir`` steps are replayed now, into the task's ``files/``, placed in /home/agent),
  its package installs -> the environment; anything else it runs is dropped, listed;
- ``metadata/requirements.sh`` -> the environment (``sandbox.build``, Debian + pip);
- ``metadata/solution/`` -> the solution: earlier answers as literals (unproven), the
  flag from running ``solution.sh`` in the box (captured; proven when it works, which
  ``--check`` verifies);
- ``docker-compose.yml`` services -> hazmat services, each rebuilt on the hazmat base
  (:mod:`.compose`), every rewrite listed; tasks whose services cannot be rebuilt are
  skipped with the reason.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

from hazmat.errors import ConfigError
from hazmat.tasks.importers.base import (
    Dropped,
    ImportedTask,
    ImportReport,
    Rewrite,
    Skipped,
    copy_tree,
    escape_text,
    slug,
    write_task_yaml,
)
from hazmat.tasks.importers.compose import (
    CannotRebuild,
    debian_has,
    pip_resolves,
    rewrite_service,
)

__all__ = ["import_cybench"]

SOURCE = "cybench"
LICENCE = "Apache-2.0"
HOME = "/home/agent"
APT = ["binutils", "bsdextrautils", "file", "gcc", "gdb", "libc6-dev", "netcat-openbsd"]
APT += ["p7zip-full", "python-is-python3", "tshark", "unzip", "xxd", "xz-utils", "zip"]
PIP = ["pwntools", "pycryptodome", "requests", "sympy"]
_DIFFICULTY = {
    "0": "trivial",
    "1": "easy",
    "2": "medium",
    "3": "hard",
    "4": "expert",
    "5": "expert",
}
_FLAG = re.compile(r"^(?P<prefix>[A-Za-z0-9_]+)\{.*\}$", re.S)


def _installs(script: str) -> tuple[list[str], list[str]]:
    """Debian and pip packages a shell script installs."""
    apt: list[str] = []
    pip: list[str] = []
    for line in script.splitlines():
        for cmd in re.split(r"&&|;", line.split("#", 1)[0]):
            words = cmd.split()
            if re.match(r"^\s*(python3?\s+-m\s+)?pip3?\s+install\b", cmd):
                pip += [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
            elif re.match(r"^\s*(sudo\s+)?(apt-get|apt)\s+.*\binstall\b", cmd):
                apt += [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    return apt, pip


class _Stage:
    """Replays an init script's file steps into a staging folder (``$TMP_DIR``)."""

    def __init__(self, task: Path, tmp: Path) -> None:
        self.task, self.tmp, self.cwd = task, tmp, task
        self.dropped: list[Dropped] = []

    def path(self, word: str) -> Path:
        word = word.replace('$(dirname "$0")', str(self.task)).replace(
            "$(dirname $0)", str(self.task)
        )
        for var in ("${TMP_DIR}", "$TMP_DIR"):
            word = word.replace(var, str(self.tmp))
        p = Path(word)
        return p if p.is_absolute() else self.cwd / p

    def _inside(self, p: Path) -> bool:
        r = p.resolve()
        return r.is_relative_to(self.task.resolve()) or r.is_relative_to(self.tmp.resolve())

    def run(self, cmd: str) -> None:
        try:
            words = shlex.split(cmd)
        except ValueError:
            return
        if not words:
            return
        op, args = words[0], [w for w in words[1:] if not w.startswith("-")]
        if op == "cd" and args:
            target = self.path(args[0])
            if self._inside(target):
                self.cwd = target
        elif op == "mkdir":
            for a in args:
                if self._inside(self.path(a)):
                    self.path(a).mkdir(parents=True, exist_ok=True)
        elif op in ("cp", "mv") and len(args) >= 2:
            dest = self.path(args[-1])
            for a in args[:-1]:
                for src in sorted(self.path(a).parent.glob(self.path(a).name)) or [self.path(a)]:
                    if not (src.exists() and self._inside(src) and self._inside(dest)):
                        continue
                    target = dest / src.name if dest.is_dir() else dest
                    if src.is_dir():
                        shutil.copytree(src, target, dirs_exist_ok=True)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src, target)
                        target.chmod(src.stat().st_mode & 0o777 | 0o600)
                    if op == "mv" and src.resolve().is_relative_to(self.tmp.resolve()):
                        shutil.rmtree(src) if src.is_dir() else src.unlink()
        elif op == "rm":
            for a in args:
                p = self.path(a)
                if p.resolve().is_relative_to(self.tmp.resolve()) and p.exists():
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        elif op == "unzip":
            self._unzip(words[1:])
        elif (
            op in ("echo", "export", "set", "if", "fi", "else", "then", "TMP_DIR=", "exit")
            or re.match(r"^[A-Z_]+=", op)
            or op in ('"""', "'''")
        ):
            return
        elif op in ("pip", "pip3", "python3", "apt", "apt-get"):
            return  # package installs: the environment
        else:
            self.dropped.append(
                Dropped(what=f"init_script.sh: {cmd.strip()[:100]}", why="not a file step")
            )

    def _unzip(self, words: list[str]) -> None:
        dest, archive = self.cwd, None
        it = iter(words)
        for w in it:
            if w == "-d":
                dest = self.path(next(it, "."))
            elif not w.startswith("-") and archive is None:
                archive = self.path(w)
        if archive is not None and not archive.exists() and archive.with_suffix(".zip").exists():
            archive = archive.with_suffix(".zip")
        if archive is None or not archive.is_file() or not self._inside(dest):
            return
        try:
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    target = (dest / info.filename).resolve()
                    if not target.is_relative_to(dest.resolve()):
                        continue
                    z.extract(info, dest)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode and target.is_file():
                        target.chmod(mode | 0o600)
        except (zipfile.BadZipFile, RuntimeError) as exc:
            self.dropped.append(Dropped(what=f"unzip {archive.name}", why=str(exc)))


def _stage_files(task: Path, out: Path, entry: ImportedTask) -> list[str]:
    script = task / "init_script.sh"
    with tempfile.TemporaryDirectory() as tmp:
        stage = _Stage(task, Path(tmp))
        if script.is_file():
            text = script.read_text(encoding="utf-8", errors="replace")
            in_echo = False
            for line in text.splitlines():
                stripped = line.strip()
                if stripped.count('"""') % 2 == 1:
                    in_echo = not in_echo
                    continue
                if in_echo or stripped.startswith("#"):
                    continue
                for cmd in re.split(r"&&|;", stripped):
                    stage.run(cmd)
        entry.dropped += stage.dropped
        return copy_tree(Path(tmp), out / "files")


def _services(task: Path, out: Path, entry: ImportedTask) -> tuple[dict[str, Any], list[str]]:
    """hazmat services from the task's compose file (rebuilt); their names."""
    found = [
        p
        for p in (
            task / "docker-compose.yml",
            task / "compose.yml",
            task / "env" / "docker-compose.yml",
        )
        if p.is_file()
    ]
    if not found:
        return {}, []
    compose = yaml.safe_load(found[0].read_text(encoding="utf-8")) or {}
    services: dict[str, Any] = {}
    for key, svc in (compose.get("services") or {}).items():
        name = str(svc.get("container_name") or key)
        build = svc.get("build")
        context_rel = build.get("context", ".") if isinstance(build, dict) else build
        if context_rel is None:
            raise CannotRebuild(f"service {name} has no build (image {svc.get('image')})")
        context = (found[0].parent / str(context_rel)).resolve()
        dockerfile = context / (
            build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        )
        if not dockerfile.is_file():
            raise CannotRebuild(f"service {name}: no Dockerfile at {dockerfile.name}")
        rebuilt = rewrite_service(context, dockerfile, out / "services" / slug(name))
        spec: dict[str, Any] = {"build": f"services/{slug(name)}"}
        user = svc.get("user") or rebuilt.user
        if user:
            spec["user"] = str(user)
        env = svc.get("environment")
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env if "=" in e)
        if env:
            spec["env"] = {str(k): escape_text(str(v)) for k, v in env.items()}
        test = (svc.get("healthcheck") or {}).get("test")
        ports = [str(p).rsplit(":", 1)[-1] for p in svc.get("ports") or []]
        if isinstance(test, list) and test[:1] == ["CMD-SHELL"]:
            spec["healthcheck"] = " ".join(test[1:])
        elif isinstance(test, list) and test[:1] == ["CMD"]:
            spec["healthcheck"] = shlex.join(test[1:])
        elif ports:
            spec["healthcheck"] = f"nc -z 127.0.0.1 {ports[0]}"
        probe = re.fullmatch(
            r"nc -z (?:localhost|127\.0\.0\.1) (\d+)( \|\| exit 1)?", spec.get("healthcheck", "")
        )
        if probe and ports and probe.group(1) not in ports:
            # compose only marks such a service unhealthy; hazmat waits for health, so a
            # check of a port the service never opens would stop every episode
            spec["healthcheck"] = f"nc -z 127.0.0.1 {ports[0]}"
            rebuilt.changes.append(
                f"health check probed port {probe.group(1)}, which the service does not "
                f"publish ({', '.join(ports)}); it probes {ports[0]}"
            )
        services[name] = spec
        entry.rewrites.append(
            Rewrite(
                service=name,
                original=f"FROM {rebuilt.original_from} ({dockerfile.relative_to(task.resolve()) if dockerfile.is_relative_to(task.resolve()) else dockerfile.name})",
                rebuilt_on="hazmat-base:bookworm",
                changes=rebuilt.changes,
            )
        )
    return services, sorted(services)


def _questions(meta: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, sub in enumerate(meta.get("subtasks") or [], 1):
        q: dict[str, Any] = {
            "id": f"q{i}",
            "question": escape_text(str(sub.get("question", "")).strip() or f"subtask {i}"),
            "answer": escape_text(str(sub.get("answer", ""))),
        }
        if sub.get("answer_format"):
            q["format"] = escape_text(str(sub["answer_format"]))
        hints = [escape_text(str(h)) for h in sub.get("hints") or [] if str(h).strip()]
        if hints:
            q["hints"] = hints
        out.append(q)
    return out


_SETUP_COMMAND = re.compile(
    r"(?:\bsudo\s+)?"
    r"(?:(?:\b(?:ba)?sh\s+|\./)?[\w./-]*requirements\.sh\b"
    r"|\bpython3?\s+-m\s+pip\b|\bpip3?\s+install\b|\bapt(?:-get)?\b|\bdocker\b)"
    r"[^;&|)\n]*?(?=\s*(?:[;&|)]|$))"
)
"""A setup command in a solution script (requirements.sh, pip/apt installs, docker), up
to the end of its simple command."""


def _solution_steps(
    task: Path, folder: Path, flag: str, entry: ImportedTask
) -> list[dict[str, Any]] | None:
    """Steps that run the benchmark's solution in the box and capture the flag (None:
    there is no usable solution script)."""
    sol = task / "metadata" / "solution"
    script = sol / "solution.sh"
    if not script.is_file():
        return None
    steps: list[dict[str, Any]] = []
    kept = []
    for line in script.read_text(encoding="utf-8", errors="replace").splitlines():
        # an install or docker command becomes `true` in place, so the line's shell
        # structure stays (`if ! apt-get install -y strace; then` -> `if ! true; then`;
        # dropping the line left its `fi` and `exit 1` behind)
        made = _SETUP_COMMAND.sub("true", line)
        if made != line:
            entry.dropped.append(
                Dropped(
                    what=f"solution.sh: {line.strip()[:80]}",
                    why="the environment and services replace it (the command reads `true`)",
                )
            )
        kept.append(made)
    dest = folder / "solution"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "solution.sh").write_text("\n".join(kept) + "\n")
    for p in sorted(sol.iterdir()):
        if not p.is_file() or p.name in ("solution.sh", "flag.txt", "solution.txt"):
            continue
        try:
            p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            entry.dropped.append(
                Dropped(
                    what=f"solution/{p.name}",
                    why="binary; the solution agent writes text files only",
                )
            )
            continue
        shutil.copyfile(p, dest / p.name)
        steps.append(
            {
                "tool": "write_file",
                "path": f"{HOME}/solution/{p.name}",
                "from_file": {"content": f"solution/{p.name}"},
            }
        )
    steps.insert(
        0,
        {
            "tool": "write_file",
            "path": f"{HOME}/solution/solution.sh",
            "from_file": {"content": "solution/solution.sh"},
        },
    )
    m = _FLAG.match(flag)
    capture = "(" + re.escape(m.group("prefix")) + r"\{[^}\s]*\})" if m else r"(\S+)\s*$"
    steps.append(
        {
            "tool": "bash",
            # the benchmark runs it next to copies of the task's files: the given ones are
            # copied in (the solution's own win), then solution.sh runs there
            "command": f"cp -rn {HOME}/. {HOME}/solution/ 2>/dev/null; "
            f"cd {HOME}/solution && bash solution.sh 2>&1",
            "timeout": 600,
            "capture": {"flag": capture},
        }
    )
    return steps


def task_packages(task: Path) -> tuple[list[str], list[str]]:
    """The Debian and pip packages a task's ``requirements.sh`` and ``init_script.sh``
    install (URLs and odd names left out)."""
    apt: list[str] = []
    pip: list[str] = []
    for script in (task / "metadata" / "requirements.sh", task / "init_script.sh"):
        if script.is_file():
            a, p = _installs(script.read_text(encoding="utf-8", errors="replace"))
            apt, pip = apt + a, pip + p
    apt = [a for a in apt if re.match(r"^[a-z0-9][a-z0-9+.-]*$", a)]
    return apt, [p for p in pip if not p.startswith(("git+", "http"))]


def shared_environment(tasks: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """One environment for every imported task, as Cybench has one agent image: the base
    tools plus every task's packages. A package pinned to different versions by different
    tasks is left unpinned. Returns (apt, pip, notes)."""
    apt: set[str] = set(APT)
    pins: dict[str, set[str]] = {}
    for task in tasks:
        a, p = task_packages(task)
        apt |= set(a)
        for req in [*PIP, *p]:
            pins.setdefault(re.split(r"[<>=!~\[]", req, maxsplit=1)[0].lower(), set()).add(req)
    pip: list[str] = []
    notes: list[str] = []
    for name, reqs in sorted(pins.items()):
        pinned = sorted(r for r in reqs if any(c in r for c in "<>=!~"))
        if len(pinned) > 1:
            notes.append(
                f"pip {name}: tasks pin {', '.join(pinned)}; the environment leaves it unpinned"
            )
            pip.append(name)
        else:
            pip.append(pinned[0] if pinned else name)
    known = debian_has(sorted(apt))
    if known is not None:
        missing = sorted(p for p, ok in known.items() if not ok)
        if missing:
            notes.append(f"apt {', '.join(missing)}: not in Debian bookworm; left out")
        apt = {p for p in apt if known.get(p, True)}
    why = pip_resolves(pip)
    if why is not None:
        unpinned = sorted({re.split(r"[<>=!~\[]", r, maxsplit=1)[0] for r in pip})
        notes.append(f"pip: the tasks' pinned versions do not install together ({why}); unpinned")
        pip = unpinned
    return sorted(apt), pip, notes


def _one(
    task: Path,
    root: Path,
    out: Path,
    report: ImportReport,
    environment: tuple[list[str], list[str]],
) -> None:
    rel = task.relative_to(root).as_posix() if task != root else task.name
    meta = json.loads((task / "metadata" / "metadata.json").read_text(encoding="utf-8"))
    name = slug(re.sub(r"^\[[^\]]*\]\s*", "", task.name))
    folder = out / name
    entry = ImportedTask(id=f"cybench/{name}", source_id=rel, folder=str(folder))
    try:
        services, names = _services(task, folder, entry)
    except CannotRebuild as exc:
        shutil.rmtree(folder, ignore_errors=True)
        report.skipped.append(
            Skipped(source_id=rel, reason=f"a service cannot be rebuilt offline: {exc}")
        )
        return
    targets = str(meta.get("target_host") or "").split()
    if targets and not services:
        shutil.rmtree(folder, ignore_errors=True)
        report.skipped.append(
            Skipped(
                source_id=rel,
                reason=f"it needs the server {', '.join(targets)} but has no docker-compose "
                "service hazmat can rebuild (found none next to the task or in env/)",
            )
        )
        return
    questions = _questions(meta)
    if not questions:
        report.skipped.append(Skipped(source_id=rel, reason="no subtasks with answers"))
        shutil.rmtree(folder, ignore_errors=True)
        return
    files = _stage_files(task, folder, entry)
    env_apt, env_pip = environment
    flag = str(meta["subtasks"][-1].get("answer", ""))
    final = _solution_steps(task, folder, flag, entry)
    last = questions[-1]["id"]
    literal = {
        "guided": [
            {"tool": "answer", "question": q["id"], "answer": q["answer"]} for q in questions
        ],
        "unguided": [{"tool": "answer", "question": last, "answer": questions[-1]["answer"]}],
    }
    if final is None:
        entry.solution, entry.solution_note = "unproven", "no solution.sh; the answers are literals"
        solved = literal
    else:
        entry.solution = "proven"
        entry.solution_note = "runs solution.sh in the box and answers the flag it prints; earlier subtask answers are literals"
        tail = [*final, {"tool": "answer", "question": last, "answer": "{{captured.flag}}"}]
        solved = {"guided": literal["guided"][:-1] + tail, "unguided": tail}
        entry.fallback = {
            "guided": literal["guided"],
            "unguided": literal["unguided"],
            "easy": literal["unguided"],
        }
    budget = max(10, len(final or []) + 5)
    items = [dict(q, steps=5) for q in questions[:-1]] + [dict(questions[-1], steps=budget)]
    where = f"The task's files are in your working directory ({HOME})." if files else ""
    if targets:
        where += " The challenge server(s) on this network: " + ", ".join(targets) + "."

    def prompt(text: Any) -> str:
        text = str(text).replace("${TMP_DIR}", HOME).replace("$TMP_DIR", HOME).strip()
        return escape_text(text + ("\n\n" + where if where else ""))

    sandbox: dict[str, Any] = {"build": {"apt": env_apt, "pip": env_pip}}
    if files:
        sandbox["files"] = {f"{HOME}/": {"source": "files/", "owner": "agent"}}
    if services:
        sandbox["network"] = "internal"
        sandbox["services"] = services
    data: dict[str, Any] = {
        "id": entry.id,
        "title": f"Cybench {task.name}",
        "category": "cyber",
        "description": escape_text(
            f"Cybench task {rel} ({', '.join(meta.get('categories', []))})."
        ),
        "preparedness": "cybersecurity",
        "difficulty": _DIFFICULTY.get(str(meta.get("difficulty"))),
        "tags": ["ctf", "cybench", *[slug(c) for c in meta.get("categories", [])]],
        "instructions": prompt(
            meta.get("hard_prompt") or meta.get("easy_prompt") or "Find the flag."
        ),
        "sandbox": sandbox,
        "tools": ["bash", "python", "read_file", "write_file"],
        "limits": {"steps": sum(q["steps"] for q in items), "seconds": 1800, "tool_timeout": 600},
        "questions": {"mode": "guided", "items": items},
        "policy": {"extends": "default", **({"settings": {"allow_hosts": names}} if names else {})},
        "solution": solved["guided"],
        "variants": {
            "guided": {},
            "unguided": {
                "questions": {"mode": "unguided", "items": [items[-1]]},
                "solution": solved["unguided"],
                "limits": {"steps": budget},
            },
        },
        "provenance": {"source": SOURCE, "id": rel, "licence": LICENCE},
    }
    if data["difficulty"] is None:
        del data["difficulty"]
    if meta.get("easy_prompt"):
        data["variants"]["easy"] = {
            **data["variants"]["unguided"],
            "instructions": prompt(meta["easy_prompt"]),
        }
    entry.variants = list(data["variants"])
    entry.mapped += [
        f"hard_prompt -> instructions; {len(questions)} subtask(s) -> questions",
        f"init_script.sh -> {len(files)} file(s) in {HOME}",
        "requirements.sh and init_script.sh installs -> the shared environment",
    ]
    if services:
        entry.mapped.append(f"docker-compose services -> {', '.join(names)} (rebuilt)")
    copy_tree(task / "metadata", folder / "metadata", skip=frozenset({"solution"}))
    write_task_yaml(
        folder,
        data,
        header=f"Imported by `hazmat import cybench` from {rel} (Apache-2.0).\n"
        "Edit freely; IMPORT.md in the import folder says what was mapped, dropped and rebuilt.",
    )
    report.tasks.append(entry)


def import_cybench(path: Path, out: Path) -> ImportReport:
    """Import every Cybench task folder at or under ``path`` into ``out``.

    Raises:
        ConfigError: no ``metadata/metadata.json`` under ``path``.
    """
    path = path.resolve()
    tasks = sorted({p.parent.parent for p in path.rglob("metadata/metadata.json")})
    tasks = [t for t in tasks if not any(t != o and t.is_relative_to(o) for o in tasks)]
    if not tasks:
        raise ConfigError(f"{path}: no Cybench task (metadata/metadata.json) found")
    report = ImportReport(source=SOURCE, path=str(path), out=str(out), licence=LICENCE)
    apt, pip, notes = shared_environment(tasks)
    report.notes.append(
        f"every task shares one environment (as Cybench has one agent image): Debian "
        f"{', '.join(apt)}; pip {', '.join(pip)}"
    )
    report.notes += notes
    for task in tasks:
        try:
            _one(task, path, out, report, (apt, pip))
        except (OSError, ValueError, KeyError) as exc:
            report.skipped.append(
                Skipped(
                    source_id=str(task.relative_to(path)) if task != path else task.name,
                    reason=f"{type(exc).__name__}: {exc}",
                )
            )
    for lic in (path / "LICENSE", path.parent / "LICENSE"):
        if lic.is_file():
            (out / "LICENSE").write_bytes(lic.read_bytes())
            break
    return report

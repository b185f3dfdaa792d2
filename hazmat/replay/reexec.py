"""Re-execute a recorded episode and compare it, step by step, with its record.

::

    report = await replay_episode(Path("runs/R"), "ep0003", backend="docker")
    report.summary        # "identical (3 steps)" or "diverged at step 2: stdout differs: ..."

What happens:

1. The task is loaded from the folder recorded in ``episode_start`` (``task_root``) and
   rendered with the recorded seed, so every secret, flag and canary is regenerated.
   The sandbox is built from that task as it is *now* (``env="task"``, the default):
   a task edited since the run shows up as a divergence at the first step it changes,
   and the report lists how the sandbox spec differs from the recorded one
   (``environment``). ``env="recorded"`` builds the sandbox from the recorded spec
   instead, for a faithful reproduction even when the task folder changed.
2. Docker: the sandbox runs on the recorded image *by id*. When that image is gone,
   the replay refuses (:class:`ReplayError`) unless ``allow_other_image``; when the
   tag now names another image, the recorded one is still used and a note says so.
   Local: there is no image; the host's tools are what they are (the bubblewrap
   version is compared and noted).
3. A replay agent answers every model turn with the recorded response, read whole
   (:func:`hazmat.replay.trace.load_call` resolves blobs: a 5 KiB ``write_file`` is
   replayed with its 5 KiB content; a missing blob refuses the replay) (content,
   tool calls with their ids, malformed calls, reasoning, token usage), so the very
   same agent loop, policy gate, tools and milestone checks run through the real
   runner (:func:`hazmat.runner.run_episode`). The policy is the one the run used
   (``config.policy`` of the run: ``default`` or a file, with the task's own
   overrides; no recorded policy means none), ``ask`` rules answered as recorded.
4. The replay is recorded as a new run (``parent_run`` = the original run id), by
   default next to the original.
5. Both records are compared per step after normalization
   (:mod:`hazmat.replay.normalize`): the call, the policy decisions (stage, action,
   rule ids), the result (exit code, timed out, error flag, stdout, stderr, text,
   submission, data) and the milestones reached after the step; then the end
   (reason, progress, depth, milestones found at the end).

``until=N`` stops after step N (the replay's step limit is set to N and the model
turn holding step N is cut after it); the end is then not compared. ``keep=True``
keeps the sandbox alive after the episode (not frozen on halt): docker leaves the
container running and detached (open a shell with ``hazmat sandbox shell --attach
CONTAINER``, see :func:`hazmat.replay.attach.attach`); local sandboxes live only as
long as this process, so ``on_kept`` is awaited with the live sandbox (the CLI
serves an interactive shell in it) and the sandbox is stopped afterwards.

Hooks used in the runner: none are needed in ``runner.py``. ``keep`` swaps the
backend class registered under the backend's name for a subclass whose
``__aexit__`` does not stop the sandbox, for the duration of the call only.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

from hazmat.agents.models import Agent
from hazmat.agents.scripted import ScriptedChatModel
from hazmat.errors import ConfigError, HazmatError, ReplayError
from hazmat.policy.base import AllowAllPolicy, Policy, PolicySession, RuleMatch, ToolCall
from hazmat.record.log import Recorder
from hazmat.replay.normalize import Normalizer, side_values
from hazmat.replay.timeline import step_output
from hazmat.replay.trace import EpisodeTrace, RunTrace, Step, load_run
from hazmat.sandbox import Detachable, Sandbox, SandboxSpec, get_backend, lacks

__all__ = [
    "KEPT_USER_LABEL",
    "Divergence",
    "KeptSandbox",
    "ReplayAgent",
    "ReplayChatModel",
    "ReplayExhaustedError",
    "ReplayReport",
    "compare_episodes",
    "recorded_messages",
    "replay_episode",
    "spec_diff",
]

log = structlog.get_logger("hazmat.replay")

KEPT_USER_LABEL = "hazmat.user"
"""Label on a kept sandbox's containers naming the sandbox user (whose shell attach opens)."""

OnKept = Callable[[Sandbox, "ReplayReport"], Awaitable[None]]


# the replay agent ---------------------------------------------------------------


class ReplayExhaustedError(Exception):
    """The replay agent was asked for a model turn the record does not have."""


class ReplayChatModel(ScriptedChatModel):
    """A chat model that answers turn *i* with the *i*-th recorded response.

    When the record has no more responses it raises :class:`ReplayExhaustedError`
    (not retried), which ends the replayed episode with reason ``error``.
    """

    @property
    def _llm_type(self) -> str:
        return "hazmat-replay"

    def _next(self) -> ChatResult:
        i = self._index
        self._index += 1
        if i >= len(self.turns):
            raise ReplayExhaustedError(
                f"the record has no model response for turn {i + 1} (it holds {len(self.turns)})"
            )
        msg = self.turns[i].model_copy(deep=True)
        return ChatResult(generations=[ChatGeneration(message=msg)])


@dataclass(frozen=True)
class ReplayAgent(Agent):
    """An agent whose model plays a recorded episode's responses back."""

    responses: tuple[AIMessage, ...] = ()

    @property
    def is_scripted(self) -> bool:
        """Replay agents need no model endpoint."""
        return True

    def make_model(self, solution: list[dict[str, Any]] | None = None) -> BaseChatModel:
        """A fresh replay model (the recorded responses, in order)."""
        return ReplayChatModel(turns=list(self.responses), label=self.name)


def recorded_messages(ep: EpisodeTrace, until: int | None = None) -> list[AIMessage]:
    """The recorded model responses of ``ep`` as AIMessages, cut after step ``until``.

    Tool calls keep their recorded ids (so step numbering and call ids replay
    exactly); malformed calls come back as invalid tool calls; reasoning and token
    usage are kept (token limits trip at the same turn).
    """
    step_of: dict[str, int] = {s.call_id: s.step for s in ep.steps if s.call_id}
    out: list[AIMessage] = []
    for turn in ep.turns:
        resp = turn.response
        calls = []
        for c in resp.get("tool_calls") or []:
            if not isinstance(c, dict):
                continue
            cid = str(c.get("id") or "")
            if until is not None and step_of.get(cid, 0) > until:
                continue
            args = c.get("args")
            calls.append(
                {
                    "name": str(c.get("name", "")),
                    "args": args if isinstance(args, dict) else {},
                    "id": cid,
                    "type": "tool_call",
                }
            )
        invalid = []
        for c in resp.get("invalid_tool_calls") or []:
            if not isinstance(c, dict):
                continue
            cid = str(c.get("id") or "")
            if until is not None and step_of.get(cid, 0) > until:
                continue
            raw = c.get("args")
            invalid.append(
                {
                    "name": c.get("name"),
                    "args": raw if isinstance(raw, str) else json.dumps(raw),
                    "id": cid or None,
                    "error": c.get("error"),
                    "type": "invalid_tool_call",
                }
            )
        content = resp.get("content", "")
        kwargs: dict[str, Any] = {}
        if resp.get("reasoning"):
            kwargs["reasoning_content"] = resp["reasoning"]
        usage = turn.event.get("usage")
        meta: Any = None
        if isinstance(usage, dict) and all(
            isinstance(usage.get(k), int) for k in ("input_tokens", "output_tokens")
        ):
            meta = {
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "total_tokens": int(
                    usage.get("total_tokens") or usage["input_tokens"] + usage["output_tokens"]
                ),
            }
        msg = AIMessage(
            content=content if isinstance(content, str | list) else str(content),
            tool_calls=calls,
            invalid_tool_calls=invalid,
            additional_kwargs=kwargs,
            usage_metadata=meta,
        )
        if until is not None and turn.steps and all(s.step > until for s in turn.steps):
            break
        out.append(msg)
        if until is not None and any(s.step >= until for s in turn.steps):
            break
    return out


# the policy, answering ``ask`` as recorded ---------------------------------------


class _RecordedAnswers:
    """Wraps a policy so ``ask`` rules are answered as they were in the record."""

    def __init__(self, inner: Policy, allowed: dict[str, bool]) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "policy")
        self.allowed = allowed

    def _ask(self, match: RuleMatch, call: ToolCall | None) -> bool:
        return bool(call is not None and self.allowed.get(call.id, False))

    def session(
        self, *, secrets: dict[str, str] | None = None, hosts: Iterable[str] | None = None
    ) -> PolicySession:
        """A session of the wrapped policy with the recorded answers as its asker."""
        try:
            params = inspect.signature(self.inner.session).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins
            params = {}  # type: ignore[assignment]
        if "asker" in params:
            return self.inner.session(secrets=secrets, asker=self._ask, hosts=hosts)  # type: ignore[call-arg]
        return self.inner.session(secrets=secrets, hosts=hosts)


def policy_for_record(run: RunTrace, task: Any) -> Policy:
    """The policy the recorded run used for ``task`` (see the module docs).

    Raises:
        PolicyError: the policy does not load any more.
    """
    cfg = run.config
    if "policy" not in cfg:
        return AllowAllPolicy()
    from hazmat.policy.compose import for_task

    return for_task(task, cfg.get("policy"))


# keeping the sandbox ---------------------------------------------------------------


class KeptSandbox(BaseModel):
    """A sandbox left running by ``keep``: how to reach it."""

    backend: str
    container: str | None = None
    """Docker: the box container (running, detached from this process)."""
    attach: str | None = None
    """The command that opens a shell in it."""
    cleanup: str | None = None
    """The command that removes it."""


class _Keeper:
    def __init__(self) -> None:
        self.sandbox: Sandbox | None = None


async def detach_sandbox(sb: Sandbox) -> str:
    """Let a sandbox outlive this process (backends that are
    :class:`~hazmat.sandbox.Detachable`: Docker closes its sockets and keeps the
    containers; the box's supervisor keeps running). Returns the kept sandbox's handle
    (Docker: the box container id).

    Raises:
        ReplayError: the sandbox's backend cannot outlive this process.
    """
    if not isinstance(sb, Detachable):
        raise ReplayError(lacks(sb, Detachable))
    return await sb.detach()


# comparison -------------------------------------------------------------------------


class Divergence(BaseModel):
    """One difference between the record and its re-execution."""

    step: int | None
    """The step (None: the end of the episode)."""
    field: str
    recorded: Any = None
    replayed: Any = None
    message: str


def _short(v: Any, n: int = 160) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= n else s[: n - 3] + "..."


def _text_diff(a: str, b: str) -> str:
    al, bl = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(al, bl, strict=False)):
        if x != y:
            return f"line {i + 1}: recorded {_short(x)!r}, replayed {_short(y)!r}"
    if len(al) != len(bl):
        i = min(len(al), len(bl))
        extra = al[i] if len(al) > len(bl) else bl[i]
        who = "recorded" if len(al) > len(bl) else "replayed"
        return f"line {i + 1} only in the {who} output: {_short(extra)!r}"
    m = difflib.SequenceMatcher(None, a, b).get_opcodes()
    first = next((op for op in m if op[0] != "equal"), None)
    if first is None:
        return "whitespace differs"
    return (
        f"at character {first[1]}: recorded {_short(a[first[1] : first[2]])!r}, "
        f"replayed {_short(b[first[3] : first[4]])!r}"
    )


def _decisions(s: Step) -> list[tuple[str, str, tuple[str, ...]]]:
    out = []
    for d in s.decisions:
        rules = tuple(
            sorted(str(r.get("rule")) for r in d.get("rules") or [] if isinstance(r, dict))
        )
        out.append((str(d.get("stage")), str(d.get("action")), rules))
    return out


RESULT_FIELDS = (
    "exit_code",
    "timed_out",
    "is_error",
    "stdout",
    "stderr",
    "text",
    "submission",
    "data",
)


def _result_view(
    run: RunTrace, s: Step, norm: Normalizer, known: dict[str, str]
) -> dict[str, Any] | None:
    r = s.result
    if r is None:
        return None
    out, err = step_output(run, s)
    view: dict[str, Any] = {}
    for f in RESULT_FIELDS:
        if f == "stdout" and "stdout" in r:
            view[f] = norm.text(out, known)
        elif f == "stderr" and "stderr" in r:
            view[f] = norm.text(err, known)
        elif f == "text" and "text" in r:
            view[f] = norm.text(run.text(r.get("text")), known)
        elif f in r:
            view[f] = norm.value(r[f], known)
    return view


def _result_divergences(
    n: int,
    orig_run: RunTrace,
    o: Step,
    new_run: RunTrace,
    r: Step,
    norm: Normalizer,
    kn_o: dict[str, str],
    kn_n: dict[str, str],
) -> list[Divergence]:
    out: list[Divergence] = []
    ov, rv = _result_view(orig_run, o, norm, kn_o), _result_view(new_run, r, norm, kn_n)
    if (ov is None) != (rv is None):
        out.append(
            Divergence(
                step=n,
                field="result",
                recorded=ov is not None,
                replayed=rv is not None,
                message="the call ran in the record but not in the replay"
                if ov is not None
                else "the call did not run in the record but ran in the replay",
            )
        )
    elif ov is not None and rv is not None:
        for f in RESULT_FIELDS:
            a, b = ov.get(f), rv.get(f)
            if a == b:
                continue
            if isinstance(a, str) and isinstance(b, str):
                msg = f"{f} differs: {_text_diff(a, b)}"
            else:
                msg = f"{f} differs: recorded {_short(a)}, replayed {_short(b)}"
            out.append(Divergence(step=n, field=f"result.{f}", recorded=a, replayed=b, message=msg))
    return out


def compare_episodes(
    orig_run: RunTrace,
    orig: EpisodeTrace,
    new_run: RunTrace,
    new: EpisodeTrace,
    *,
    normalizer: Normalizer | None = None,
    until: int | None = None,
) -> list[Divergence]:
    """Every difference between a recorded episode and its re-execution, in step order.

    Steps 1..``until`` (or all) are compared field by field after normalization;
    without ``until``, and when the recorded episode ended (was not interrupted),
    the end is compared too.
    """
    norm = normalizer or Normalizer()
    kn_o = side_values(orig_run.run_id, orig.ready)
    kn_n = side_values(new_run.run_id, new.ready)
    out: list[Divergence] = []
    last = max([s.step for s in orig.steps] + [0])
    if until is not None:
        last = min(last, until)
    for n in range(1, last + 1):
        o, r = orig.step(n), new.step(n)
        if o is None:
            continue
        if r is None:
            out.append(
                Divergence(
                    step=n,
                    field="step",
                    recorded=o.tool,
                    replayed=None,
                    message=f"the replay has no step {n} (it ended: {new.reason})",
                )
            )
            continue
        ocall = norm.value({"tool": o.tool, "args": o.args, "malformed": bool(o.malformed)}, kn_o)
        rcall = norm.value({"tool": r.tool, "args": r.args, "malformed": bool(r.malformed)}, kn_n)
        if ocall != rcall:
            out.append(
                Divergence(
                    step=n,
                    field="call",
                    recorded=ocall,
                    replayed=rcall,
                    message=f"the call differs: recorded {_short(ocall)}, replayed {_short(rcall)}",
                )
            )
        for stage in ("before", "after"):
            if stage == "after":
                out.extend(_result_divergences(n, orig_run, o, new_run, r, norm, kn_o, kn_n))
            od = [d for d in _decisions(o) if d[0] == stage]
            rd = [d for d in _decisions(r) if d[0] == stage]
            if od != rd:
                out.append(
                    Divergence(
                        step=n,
                        field=f"decision.{stage}",
                        recorded=od,
                        replayed=rd,
                        message=f"policy decision ({stage}) differs: recorded {_fmt_dec(od)}, "
                        f"replayed {_fmt_dec(rd)}",
                    )
                )
        om = sorted(str(m.get("id")) for m in o.milestones)
        rm = sorted(str(m.get("id")) for m in r.milestones)
        if om != rm:
            out.append(
                Divergence(
                    step=n,
                    field="milestones",
                    recorded=om,
                    replayed=rm,
                    message=f"milestones reached differ: recorded {om or 'none'}, "
                    f"replayed {rm or 'none'}",
                )
            )
    if until is not None or orig.end is None:  # stopped early, or the record was cut short
        return out
    extra = [s.step for s in new.steps if s.step > last]
    if extra:
        out.append(
            Divergence(
                step=extra[0],
                field="step",
                recorded=None,
                replayed=extra,
                message=f"the replay went on past the recorded steps "
                f"(steps {extra[0]}..{extra[-1]})",
            )
        )
    oe, ne = orig.end or {}, new.end or {}
    for f in ("reason", "progress", "depth"):
        a = orig.reason if f == "reason" else oe.get(f)
        b = new.reason if f == "reason" else ne.get(f)
        if a != b:
            out.append(
                Divergence(
                    step=None,
                    field=f"end.{f}",
                    recorded=a,
                    replayed=b,
                    message=f"end {f} differs: recorded {a}, replayed {b}",
                )
            )
    of = sorted(str(m.get("id")) for m in orig.final_milestones)
    nf = sorted(str(m.get("id")) for m in new.final_milestones)
    if of != nf:
        out.append(
            Divergence(
                step=None,
                field="end.milestones",
                recorded=of,
                replayed=nf,
                message=f"milestones found at the end differ: recorded "
                f"{of or 'none'}, replayed {nf or 'none'}",
            )
        )
    return out


def _fmt_dec(d: list[tuple[str, str, tuple[str, ...]]]) -> str:
    if not d:
        return "none"
    return "; ".join(
        f"{stage} {action}" + (f" [{', '.join(rules)}]" if rules else "")
        for stage, action, rules in d
    )


def spec_diff(a: Any, b: Any, path: str = "", *, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted paths at which two JSON-like specs differ (``files./etc/x.content``)."""
    if path in ignore:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if sub in ignore:
                continue
            if k not in a:
                out.append(f"{sub} (added)")
            elif k not in b:
                out.append(f"{sub} (removed)")
            else:
                out.extend(spec_diff(a[k], b[k], sub, ignore=ignore))
        return out
    if a != b:
        return [path or "(spec)"]
    return []


# the report -------------------------------------------------------------------------


class ReplayReport(BaseModel):
    """The outcome of :func:`replay_episode` (``--json`` prints it)."""

    run_dir: str
    run_id: str
    episode_id: str
    task_id: str
    backend: str
    replay_run: str | None = None
    """The new run directory holding the replay's own record."""
    verdict: str = "identical"
    """``identical`` or ``diverged``."""
    summary: str = ""
    first_divergence: Divergence | None = None
    divergences: list[Divergence] = Field(default_factory=list)
    steps_compared: int = 0
    until: int | None = None
    recorded_end: str | None = None
    replayed_end: str | None = None
    environment: list[str] = Field(default_factory=list)
    """Where the sandbox spec differs from the recorded one."""
    notes: list[str] = Field(default_factory=list)
    kept: KeptSandbox | None = None

    @property
    def identical(self) -> bool:
        """True when no step differs."""
        return self.verdict == "identical"


# the replay itself -----------------------------------------------------------------


def _load_task(ep: EpisodeTrace) -> Any:
    from hazmat.tasks import load_task

    root = (ep.start or {}).get("task_root")
    if not root:
        raise ReplayError(
            f"episode {ep.episode_id}: the record does not name its task folder",
            hint="runs recorded before task_root was recorded cannot be replayed",
        )
    path = Path(str(root))
    if not path.exists():
        raise ReplayError(
            f"episode {ep.episode_id}: task folder {path} is gone",
            hint="restore the task folder (the replay regenerates the episode "
            "from it and the recorded seed)",
        )
    try:
        return load_task(path)
    except HazmatError as exc:
        raise ReplayError(
            f"episode {ep.episode_id}: the task at {path} no longer loads: {exc.one_line()}"
        ) from exc


def _pin_image(ep: EpisodeTrace, image: str, allow_other: bool, notes: list[str]) -> str | None:
    """The recorded image id to run on, or None to use ``image`` as it is now.

    Raises:
        ReplayError: the recorded image is gone (and not ``allow_other``).
    """
    ready = ep.ready or {}
    recorded = ready.get("image_id")
    from hazmat.sandbox.docker.image import docker_client

    client = docker_client(timeout=30)
    try:
        current: str | None = None
        with contextlib.suppress(Exception):
            ref = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
            current = str(client.images.get(ref).id)
        if not recorded:
            notes.append(f"no image id was recorded; replaying on {image} ({current or 'missing'})")
            return None
        try:
            client.images.get(str(recorded))
        except Exception:
            if allow_other:
                notes.append(
                    f"the recorded image {str(recorded)[:19]} is gone; replaying on "
                    f"{image} ({(current or 'missing')[:19]}) as asked"
                )
                return None
            raise ReplayError(
                f"episode {ep.episode_id} ran on image {recorded}, which is gone "
                f"({image} is now {current or 'missing'})",
                hint="rebuilding makes a new image id; pass --allow-other-image to replay on "
                "the current image (results may differ)",
            ) from None
        if current and current != recorded:
            notes.append(
                f"{image} now names {current[:19]}; replaying on the recorded image "
                f"{str(recorded)[:19]} by id"
            )
        return str(recorded)
    finally:
        with contextlib.suppress(Exception):
            client.close()


async def replay_episode(
    run_dir: str | os.PathLike[str],
    episode_id: str,
    *,
    backend: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    until: int | None = None,
    keep: bool = False,
    env: str = "task",
    policy: Policy | None = None,
    allow_other_image: bool = False,
    ignore: Sequence[str] = (),
    on_kept: OnKept | None = None,
) -> ReplayReport:
    """Re-execute one recorded episode into a new run and compare it with the record.

    ``backend`` defaults to the recorded one; ``out_dir`` to the folder holding the
    original run; ``policy`` to the run's recorded policy (see the module docs);
    ``ignore`` adds regexes whose matches are not compared.

    Raises:
        ReplayError: unknown episode, task folder gone or broken, image gone, or an
            ``until`` outside the recorded steps.
        ConfigError: a bad ``env``, backend name or ``ignore`` regex.
        RecordError: the original cannot be read or the new run cannot be written.
    """
    from hazmat.runner import run_episode
    from hazmat.tasks import render_task

    if env not in ("task", "recorded"):
        raise ConfigError(f"unknown --env {env!r}", hint="use task or recorded")
    normalizer = Normalizer(ignore=ignore)
    src = Path(run_dir)
    orig_run = load_run(src)
    orig = orig_run.episode(episode_id)
    if orig.start is None:
        raise ReplayError(f"episode {episode_id}: no episode_start in the record")
    if orig.seed is None:
        raise ReplayError(f"episode {episode_id}: the record holds no seed")
    if until is not None and (until < 1 or orig.step(until) is None):
        raise ReplayError(
            f"--until {until}: episode {episode_id} has steps 1..{len(orig.steps)}"
            if orig.steps
            else f"--until {until}: episode {episode_id} has no steps"
        )
    unreadable = [f"step {s.step}" for s in orig.steps if s.missing] + [
        f"turn {t.turn}" for t in orig.turns if t.missing
    ]
    if unreadable:
        raise ReplayError(
            f"episode {episode_id}: {', '.join(unreadable)}: the recorded call is in blobs "
            "missing from the record; it cannot be replayed as recorded",
            hint=f"run `hazmat verify {src}`",
        )
    notes: list[str] = []
    if orig_run.problems:
        p = orig_run.problems[0]
        notes.append(f"the original record does not verify at line {p.line} ({p.kind})")
    if orig.end is None:
        notes.append("the original episode was interrupted; only its recorded steps compare")
    task = _load_task(orig)
    rendered = render_task(task, orig.seed)
    recorded_backend = str(
        (orig.ready or {}).get("backend") or orig.start.get("backend") or "local"
    )
    use_backend = backend or recorded_backend
    get_backend(use_backend)
    if use_backend != recorded_backend:
        notes.append(f"recorded on {recorded_backend}, replayed on {use_backend}")
    recorded_spec = (orig.ready or {}).get("spec")
    sandbox: SandboxSpec = rendered.task.sandbox
    if env == "recorded":
        if not isinstance(recorded_spec, dict):
            raise ReplayError(
                f"episode {episode_id}: no sandbox spec was recorded", hint="use --env task"
            )
        sandbox = SandboxSpec.model_validate(recorded_spec)
    pinned = None
    if use_backend == "docker" and recorded_backend == "docker":
        pinned = _pin_image(orig, sandbox.image, allow_other_image, notes)
        if pinned:
            sandbox = sandbox.model_copy(update={"image": pinned})
    if keep:  # kept containers say whose shell to open (hazmat.replay.attach)
        sandbox = sandbox.model_copy(
            update={
                "labels": {**sandbox.labels, KEPT_USER_LABEL: sandbox.user, "hazmat.kept": "replay"}
            }
        )
    updates: dict[str, Any] = {"sandbox": sandbox}
    if until is not None:
        updates["limits"] = rendered.task.limits.model_copy(update={"steps": until})
    rendered = rendered.model_copy(update={"task": rendered.task.model_copy(update=updates)})
    if policy is None:
        policy = policy_for_record(orig_run, task)
    allowed = {s.call_id: s.action in ("allow", "log") for s in orig.steps if s.call_id}
    gate_policy = _RecordedAnswers(policy, allowed)
    agent = ReplayAgent(
        name=f"replay:{orig.agent}",
        kind="scripted",
        responses=tuple(recorded_messages(orig, until)),
    )
    dest = Path(out_dir) if out_dir is not None else src.parent
    epoch = orig.start.get("epoch")
    recorder = Recorder.create(
        dest,
        parent_run=orig_run.run_id,
        tasks=[task.id],
        agents=[agent.name],
        config={
            "replay_of": {
                "run": orig_run.run_id,
                "path": str(src.resolve()),
                "episode": episode_id,
            },
            "backend": use_backend,
            "env": env,
            "until": until,
            "policy": orig_run.config.get("policy", "none"),
            "seed": orig.seed,
            "image": pinned,
        },
    )
    keeper = _Keeper()
    report = ReplayReport(
        run_dir=str(src),
        run_id=orig_run.run_id,
        episode_id=episode_id,
        task_id=task.id,
        backend=use_backend,
        replay_run=str(recorder.path),
        until=until,
        notes=notes,
    )
    status = "interrupted"

    async def take(sb: Sandbox) -> None:
        keeper.sandbox = sb

    try:
        await run_episode(
            rendered,
            agent,
            backend=use_backend,
            recorder=recorder,
            episode_id=episode_id,
            epoch=epoch if isinstance(epoch, int) else 0,
            policy=gate_policy,
            run_dir=recorder.path,
            keep=take if keep else None,
        )
        status = "complete"
    finally:
        if keeper.sandbox is not None and status != "complete":
            with contextlib.suppress(Exception):
                await keeper.sandbox.stop()
        recorder.finish(status)  # type: ignore[arg-type]
    new_run = load_run(recorder.path)
    new = new_run.episode(episode_id)
    _fill(report, orig_run, orig, new_run, new, normalizer, until, pinned, recorded_spec)
    if keeper.sandbox is not None:
        await _after_keep(keeper.sandbox, report, recorder.run_id, on_kept)
    return report


def _fill(
    report: ReplayReport,
    orig_run: RunTrace,
    orig: EpisodeTrace,
    new_run: RunTrace,
    new: EpisodeTrace,
    norm: Normalizer,
    until: int | None,
    pinned: str | None,
    recorded_spec: Any,
) -> None:
    divs = compare_episodes(orig_run, orig, new_run, new, normalizer=norm, until=until)
    report.divergences = divs[:200]
    report.first_divergence = divs[0] if divs else None
    report.verdict = "diverged" if divs else "identical"
    last = max([s.step for s in orig.steps] + [0])
    report.steps_compared = min(last, until) if until is not None else last
    report.recorded_end = orig.reason
    report.replayed_end = new.reason
    new_spec = (new.ready or {}).get("spec")
    if isinstance(recorded_spec, dict) and isinstance(new_spec, dict):
        ignored = ("labels.hazmat.kept", f"labels.{KEPT_USER_LABEL}")
        report.environment = spec_diff(
            recorded_spec, new_spec, ignore=ignored + (("image",) if pinned else ())
        )
    o_info = (orig.ready or {}).get("info") or {}
    n_info = (new.ready or {}).get("info") or {}
    if o_info.get("bwrap_version") and o_info.get("bwrap_version") != n_info.get("bwrap_version"):
        report.notes.append(
            f"bubblewrap was {o_info.get('bwrap_version')}, now {n_info.get('bwrap_version')}"
        )
    if new.end is not None and new.end.get("error"):
        report.notes.append(f"the replayed episode ended in error: {new.end.get('error')}")
    where = f" of {until}" if until is not None else ""
    if report.first_divergence is None:
        report.summary = f"identical ({report.steps_compared} steps{where})"
    else:
        d = report.first_divergence
        at = f"step {d.step}" if d.step is not None else "the end"
        more = f" (+{len(divs) - 1} more differences)" if len(divs) > 1 else ""
        report.summary = f"diverged at {at}: {d.message}{more}"
    if report.environment:
        report.summary += (
            f"; the sandbox spec differs from the record at "
            f"{', '.join(report.environment[:3])}" + (" ..." if len(report.environment) > 3 else "")
        )


async def _after_keep(
    sb: Sandbox, report: ReplayReport, replay_run_id: str, on_kept: OnKept | None
) -> None:
    if isinstance(sb, Detachable):
        try:
            container = await detach_sandbox(sb)
        except Exception:
            with contextlib.suppress(Exception):
                await sb.stop()
            raise
        report.kept = KeptSandbox(
            backend=sb.backend,
            container=container,
            attach=f"hazmat sandbox shell --attach {container[:12]}",
            cleanup=f"hazmat cleanup --run {replay_run_id}",
        )
        if on_kept is not None:
            await on_kept(sb, report)
        return
    report.kept = KeptSandbox(
        backend=sb.backend, attach="(served by this process until you leave the shell)"
    )
    try:
        if on_kept is not None:
            await on_kept(sb, report)
    finally:
        await sb.stop()

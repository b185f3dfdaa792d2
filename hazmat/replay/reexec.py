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
   Local: the sandbox runs the environment's root file system (the same hash as the
   image, see :mod:`hazmat.sandbox.rootfs`); the bubblewrap version is compared and
   noted. On either backend, a replay that ran on another environment than the
   recorded episode (another hash, or the host's system) says so in its notes and
   its summary.
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

Hooks used in the runner: none are needed in ``hazmat.runner``. ``keep`` swaps the
backend class registered under the backend's name for a subclass whose
``__aexit__`` does not stop the sandbox, for the duration of the call only.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog

from hazmat.errors import ConfigError, HazmatError, ReplayError
from hazmat.policy.base import AllowAllPolicy, Policy, PolicySession, RuleMatch, ToolCall
from hazmat.record.log import Recorder
from hazmat.replay.agent import ReplayAgent, recorded_messages
from hazmat.replay.compare import ReplayReport, _fill
from hazmat.replay.kept import KEPT_USER_LABEL, KeptSandbox, _Keeper, detach_sandbox
from hazmat.replay.normalize import Normalizer
from hazmat.replay.trace import EpisodeTrace, RunTrace, load_run
from hazmat.sandbox import Detachable, Sandbox, SandboxSpec, get_backend

__all__ = ["ReplayReport", "policy_for_record", "replay_episode"]

log = structlog.get_logger("hazmat.replay")

OnKept = Callable[[Sandbox, "ReplayReport"], Awaitable[None]]


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
        ReplayError: the run was policed by a policy given in Python (not rebuildable).
    """
    cfg = run.config
    if "policy" not in cfg and cfg.get("policy_given"):
        raise ReplayError(
            f"run {run.run_id} was policed by a policy given in Python "
            "(run_tasks(policy_for=...)), which the record cannot rebuild",
            hint="replay it with --policy (a policy file or 'default')",
        )
    if "policy" not in cfg:
        return AllowAllPolicy()
    from hazmat.policy.compose import for_task

    return for_task(task, cfg.get("policy"))


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

"""The root of the ``hazmat`` command: the typer app, its global options and :func:`main`.

:func:`main` is the only place where an exception becomes what a person sees:

- a :class:`~hazmat.errors.HazmatError`: one line ``error: <message> (<hint>)`` on
  stderr and the error's exit code (2 for bad input);
- a usage mistake (unknown command or option, missing argument): one line naming the
  command and the mistake, exit 2;
- Ctrl-C outside a run: ``interrupted``, exit 130 (``hazmat run`` handles its own);
- anything else: one line ``error: internal error (<type>: <message>); details in
  <log file>``, the traceback written to that file, exit 1. ``--debug`` (or
  ``HAZMAT_DEBUG=1``) shows the traceback instead.

Nothing heavy is imported here or by the command modules at import time: each command
imports what it needs when it runs, so ``hazmat --help`` starts in a few tens of
milliseconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

__all__ = ["app", "command", "group", "main", "short_help", "user_help"]

F = TypeVar("F", bound=Callable[..., Any])

_SECTIONS = ("Raises:", "Args:", "Returns:", "Yields:", "Example:", "Examples:", "Note:")


def user_help(doc: str | None) -> str:
    """The help a person reads, from a docstring meant for both people and developers.

    Developer sections (``Raises:``, ``Args:``, ...) are dropped, each paragraph is
    joined into one line (so the terminal wraps it, never mid-sentence), and
    paragraphs stay apart.
    """
    if not doc:
        return ""
    import inspect

    paragraphs: list[str] = []
    current: list[str] = []
    for line in inspect.cleandoc(doc).splitlines():
        text = line.strip()
        if text in _SECTIONS:
            break
        if not text:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(text)
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def short_help(text: str) -> str:
    """The command list's line: the help's first clause (up to ``:``, ``;`` or ``.``)."""
    import re

    first = text.split("\n\n", 1)[0]
    return re.split(r"[:;] |\. |\.$", first, maxsplit=1)[0].strip()


def group(help_text: str) -> typer.Typer:
    """A sub-command group (``hazmat sandbox ...``) with the root's settings."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def _root_app() -> typer.Typer:
    return typer.Typer(
        name="hazmat",
        help="A containment lab for dangerous-capability evaluations of AI agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


app = _root_app()


def command(parent: typer.Typer, name: str | None = None, **settings: Any) -> Callable[[F], F]:
    """Mount the decorated function as a command of ``parent``, its help from its docstring."""

    def mount(fn: F) -> F:
        text = user_help(fn.__doc__)
        settings.setdefault("short_help", short_help(text))
        parent.command(name, help=text, **settings)(fn)
        return fn

    return mount


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="more log lines on stderr (-vv: debug)"),
    ] = 0,
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of an internal error")
    ] = False,
) -> None:
    """A containment lab for dangerous-capability evaluations of AI agents."""
    from hazmat.cli.console import configure_logging_on_use, install_output_guard
    from hazmat.errors import ConfigError

    install_output_guard()  # every command's output is redacted (not --help: it has none)
    if debug:
        os.environ["HAZMAT_DEBUG"] = "1"
    level = os.environ.get("HAZMAT_LOG_LEVEL", "warning").lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ConfigError(f"HAZMAT_LOG_LEVEL={level}: not a log level",
                          hint="use debug, info, warning, error or critical")  # fmt: skip
    configure_logging_on_use("debug" if verbose > 1 else "info" if verbose else level)


def click_command(args: list[str] | None = None) -> Any:
    """The click command typer builds from :data:`app`, with readable metavars
    (``--agent AGENT``, ``TASK_PATHS...``) instead of type names (``<list[str]>``).

    Given the command line ``args``, only the command it names is built (building all
    of them costs more than some commands take to run); the whole tree when it names
    none, or a name no command has (so the usage error can suggest the close ones).
    """
    import typer.main

    root = typer.main.get_command(_only(_command_name(args or [])))

    def tidy(cmd: Any) -> None:
        for param in getattr(cmd, "params", ()):
            if getattr(param, "is_flag", False) or param.name is None:
                continue
            param.metavar = param.metavar or param.name.upper()
            if getattr(param, "param_type_name", "") == "argument":
                param.display_type_rich = lambda ctx: None  # no "<list[Path]>" after the name
        for sub in getattr(cmd, "commands", {}).values():
            tidy(sub)

    tidy(root)
    return root


def _command_name(args: list[str]) -> str | None:
    """The command a command line names: its first word that is not a root option (the
    root's options are all flags, so no option takes the next word as its value)."""
    for arg in args:
        if arg == "--help":  # the root's help, whatever follows: it lists every command
            return None
        if arg == "--":
            return args[args.index(arg) + 1] if arg != args[-1] else None
        if not arg.startswith("-"):
            return arg
    return None


def _only(name: str | None) -> typer.Typer:
    """:data:`app` with only the command or group ``name``, or all of it (no such name)."""
    if name is None:
        return app
    pruned = _root_app()
    pruned.registered_callback = app.registered_callback
    for info in app.registered_commands:
        callback = info.callback
        own = info.name or (callback.__name__.lower().replace("_", "-") if callback else None)
        if own == name:
            pruned.registered_commands = [info]
            return pruned
    for group_info in app.registered_groups:
        if group_info.name == name:
            pruned.registered_groups = [group_info]
            return pruned
    return app


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the ``hazmat`` command and exit; every failure becomes one line and an exit code."""
    from hazmat.cli import console
    from hazmat.errors import HazmatError

    args = list(sys.argv[1:] if argv is None else argv)
    # hazmat's models use no pydantic plugin, and looking for plugins reads the entry
    # points of every installed distribution when the first model is built (a user who
    # wants theirs sets PYDANTIC_DISABLE_PLUGINS to the names to leave out, or to "").
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        rc = click_command(args).main(args=args, prog_name="hazmat", standalone_mode=False)
    except HazmatError as exc:
        console.error(exc.one_line())
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.error("interrupted", prefix="")
        sys.exit(130)
    except typer.TyperException as exc:  # click's usage errors (typer bundles click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `hazmat`, `hazmat sandbox`
            ctx = getattr(exc, "ctx", None)  # the help, as `--help` prints it, exit 2
            sys.stdout.write((ctx.get_help() if ctx is not None else "") + "\n")
            sys.exit(2)
        console.error(_usage_line(exc, args))
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except Exception as exc:
        if os.environ.get("HAZMAT_DEBUG") or "--debug" in args:
            raise
        where = console.save_traceback(exc)
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        console.error(f"internal error ({detail}); details in {where}")
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


def _usage_line(exc: Exception, args: list[str]) -> str:
    """``hazmat run: No such option: --bogus-flag (hazmat run --help)``; a mistake click
    reports without its command (an option missing its value) names the command the
    command line names."""
    fmt = getattr(exc, "format_message", None)
    message = str(fmt() if callable(fmt) else exc).replace("\n", " ").strip()
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    if not path:
        name = _command_name(args)
        path = f"hazmat {name}" if name and _only(name) is not app else "hazmat"
    return f"{path}: {message} (see {path} --help)"

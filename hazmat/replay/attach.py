"""Shells into sandboxes kept by ``hazmat replay --keep``.

Docker: the replay leaves the box container running and detached;
:func:`attach` opens an interactive shell in it as the sandbox user (it is what
``hazmat sandbox shell --attach CONTAINER`` calls). The shell runs as the sandbox
user (label ``hazmat.user``, set by the replay), in its working directory. Only
containers hazmat made (label ``hazmat=1``) are accepted; a paused one (frozen on
halt) is unpaused first.
Remove it afterwards with ``hazmat cleanup --run <replay run id>``.

Local (bubblewrap): the sandbox's processes live inside the replay process's
namespaces and die with it, so no other process can attach. The replay process
itself serves the shell (:func:`serve_shell`): one command per line in the
sandbox user's persistent bash session (working directory and variables carry
over), until end of input (Ctrl-D); then the sandbox is stopped.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from hazmat.sandbox.base import Sandbox
from hazmat.sandbox.docker.attach import attach, attach_command

__all__ = ["attach", "attach_command", "serve_shell"]


async def serve_shell(
    sb: Sandbox, *, stdin: TextIO | None = None, stdout: Any = None, prompt: str = "replay$ "
) -> int:
    """Serve an interactive shell in a live sandbox: run each input line, print its output.

    Lines run in the sandbox user's persistent bash session. Returns the exit code
    of the last command. The prompt is shown only when input is a terminal.
    """
    inp = stdin or sys.stdin
    out = stdout or sys.stdout.buffer
    loop = asyncio.get_running_loop()
    show_prompt = inp.isatty()
    rc = 0
    while True:
        if show_prompt:
            out.write(prompt.encode())
            out.flush()
        line = await loop.run_in_executor(None, inp.readline)
        if not line:
            break
        if not line.strip():
            continue
        res = await sb.shell(line.rstrip("\n"))
        out.write(res.stdout)
        out.write(res.stderr)
        out.flush()
        rc = res.exit_code
    return rc

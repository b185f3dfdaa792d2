"""Shell commands, parsed with tree-sitter-bash into the simple commands that would run.

:func:`parse_shell` turns a command string into a :class:`ShellParse`: a flat list of
:class:`Cmd` (argv words, redirections, assignments, stdin text), every pipeline, and
the text layers seen on the way (the original text, ``sh -c`` strings, ``eval``
strings, decoded payloads, ``perl -e``/``python -c`` code).

It follows, recursively (bounded depth):

- pipelines, ``&&``/``||``/``;`` lists, subshells, ``{ ...; }`` groups, functions,
  ``if``/``for``/``while``/``case`` bodies, command and process substitution;
- redirections (``>``, ``>>``, ``<``, ``&>``, ``<>``), here-docs and here-strings
  (their text becomes the command's stdin);
- ``sh -c``/``bash -c``/``su -c`` strings, ``eval``, ``ssh host CMD`` and wrappers
  (``sudo``, ``doas``, ``env``, ``nohup``, ``timeout``, ``nice``, ``setsid``, ``xargs``,
  ``find -exec``, ``chroot``, ``busybox``, ...): the wrapped command is emitted as
  its own :class:`Cmd` with ``via`` naming the wrapper;
- static decoding: ``echo``/``printf`` (``\\x..``, octal), ``$'...'``, here-docs,
  ``base64 -d``, ``base32 -d``, ``xxd -r -p``, ``rev``, ``tr`` (rot13), ``gunzip``,
  ``bunzip2``, ``xz -d`` are evaluated when their input is literal; a decoded
  payload piped into a shell is parsed as shell, into python is scanned with
  :mod:`hazmat.policy.pyscan`;
- word tricks: quotes and backslashes inside words (``r\\m``, ``"r""m"``),
  ``${IFS}``, literal variables assigned earlier in the same script (``a=rm; $a``),
  brace lists in command position (``{rm,-rf,/}``), and globs over well-known
  paths (``/???/c?t /e??/sh*w``).

It never executes anything. What it cannot know (the contents of files, the output
of real commands) is left as text (``$(...)``), and the sandbox monitors cover it.
The parser object is made once per thread and reused; parsing is pure.
"""

from __future__ import annotations

from hazmat.policy.shell.commands import SHELLS, Cmd, ShellParse
from hazmat.policy.shell.walk import _parser as _parser  # the tests reach the per-thread parser
from hazmat.policy.shell.walk import parse_shell

__all__ = ["SHELLS", "Cmd", "ShellParse", "parse_shell"]

"""Python code, read with :mod:`ast`: what it would run, open, connect to and import.

:func:`scan_python` never executes the code. It resolves import aliases
(``import subprocess as sp``, ``from os import system``), and reports:

- ``shell``: command strings handed to a shell or exec (``os.system``, ``os.popen``,
  ``subprocess.*`` with a string or a list of literal words, ``pty.spawn``, ``os.exec*``);
  the caller feeds them back to :func:`hazmat.policy.shell.parse_shell`;
- ``opened``: ``(path, mode)`` of ``open()``/``io.open``/``pathlib.Path(...).read_text``
  and friends with literal paths;
- ``connects``: ``(host, port)`` of ``socket.connect``/``create_connection`` and URLs given
  to ``urllib``/``requests``/``httpx``/``http.client``;
- ``imports``, ``calls`` (dotted names), and facts used by detectors (``socket``,
  ``bind``, ``dup2``, ``dynamic_exec`` for ``exec``/``eval``/``compile`` of non-literal
  code, ``setuid``);
- ``code``: decoded payloads (``base64.b64decode("...")``, ``bytes.fromhex``,
  ``codecs.decode(...,"rot13")``) which are scanned again (bounded depth).

Code that does not parse is reported with ``error`` set; the raw text still reaches the
regex detectors.
"""

from __future__ import annotations

from hazmat.policy.pyscan.pyfacts import PyFacts
from hazmat.policy.pyscan.scanner import scan_python

__all__ = ["PyFacts", "scan_python"]

"""The python calls the scanner knows by name: shell and subprocess calls, URL openers,
decoders, ``exec``/``eval`` and importers, the names a ``from X import *`` brings; and
the bounds of the static evaluation.
"""

from __future__ import annotations

_SHELL_CALLS = {
    "os.system",
    "os.popen",
    "os.popen2",
    "os.popen3",
    "commands.getoutput",
    "commands.getstatusoutput",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
}
_SUBPROCESS = {
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen",
    "asyncio.create_subprocess_shell",
    "asyncio.create_subprocess_exec",
    "os.spawnl",
    "os.spawnlp",
    "os.spawnv",
    "os.spawnvp",
    "os.execl",
    "os.execle",
    "os.execlp",
    "os.execv",
    "os.execve",
    "os.execvp",
    "os.execvpe",
    "os.posix_spawn",
    "os.posix_spawnp",
    "pty.spawn",
    "sh.Command",
    "pexpect.spawn",
    "pexpect.run",
}
_URL_CALLS = {
    "urllib.request.urlopen",
    "urllib.request.urlretrieve",
    "urllib.urlopen",
    "urllib2.urlopen",
    "requests.get",
    "requests.post",
    "requests.put",
    "requests.request",
    "requests.patch",
    "httpx.get",
    "httpx.post",
    "httpx.put",
    "httpx.stream",
    "urllib.request.Request",
    "http.client.HTTPConnection",
    "http.client.HTTPSConnection",
    "ftplib.FTP",
    "smtplib.SMTP",
    "paramiko.SSHClient",
    "wget.download",
    "aiohttp.ClientSession",
}
MAX_DEPTH = 3


_DECODERS = (
    "b64decode", "standard_b64decode", "urlsafe_b64decode", "decodebytes", "decodestring",
    "b32decode", "b16decode", "a85decode", "b85decode", "a2b_base64", "fromhex", "unhexlify",
    "a2b_hex", "decompress",
)  # fmt: skip
_EXEC = frozenset(
    {"exec", "eval", "compile", "builtins.exec", "builtins.eval", "builtins.compile",
     "__builtins__.exec", "__builtins__.eval", "execfile", "runpy.run_path", "code.interact"}
)  # fmt: skip
_IMPORTERS = frozenset(
    {"__import__", "importlib.import_module", "importlib.__import__", "builtins.__import__",
     "__builtins__.__import__"}
)  # fmt: skip
_STAR_NAMES = {
    "os": {"system", "popen", "execl", "execle", "execlp", "execv", "execve", "execvp", "dup2",
           "setuid", "spawnl", "spawnv", "fork", "chmod", "remove", "unlink"},
    "subprocess": {"Popen", "call", "run", "check_call", "check_output", "getoutput"},
    "socket": {"socket", "create_connection", "AF_INET", "SOCK_STREAM"},
    "pty": {"spawn"},
}  # fmt: skip
MAX_CONST = 200_000
"""Longest string the static evaluator builds (a decoded payload)."""

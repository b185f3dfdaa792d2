"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions wire format.

It answers ``POST /v1/chat/completions`` with scripted replies, in order. A reply
is either ``{"status": 429}`` (an error response; ``"echo_auth": true`` puts the
request's Authorization header in the error message, as a 401 often does) or an
assistant turn
``{"content": str, "tool_calls": [(name, arguments_json_text), ...]}``. Every
request body is kept in ``requests`` so tests can check what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedOpenAIServer:
    """Start with ``with ScriptedOpenAIServer(replies) as srv: srv.base_url``."""

    def __init__(
        self,
        replies: list[dict[str, Any]] | None = None,
        *,
        repeat_last: bool = False,
        choose: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.replies = list(replies or [])
        self.repeat_last = repeat_last
        self.choose = choose
        """When set, picks each reply from the request body instead of from the list
        (so concurrent clients, e.g. pytest workers, get replies that fit them)."""
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._n = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    i = outer._n
                    outer._n += 1
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if outer.choose is not None:
                    reply = outer.choose(body)
                elif i < len(outer.replies):
                    reply = outer.replies[i]
                elif outer.repeat_last and outer.replies:
                    reply = outer.replies[-1]
                else:
                    reply = {"content": "done"}
                if "status" in reply:
                    message = "scripted error"
                    if reply.get("echo_auth"):  # as some endpoints do on a 401
                        message = f"Incorrect API key provided: {self.headers.get('authorization')}"
                    self._send(
                        int(reply["status"]),
                        {
                            "error": {
                                "message": message,
                                "type": "rate_limit_error",
                                "code": None,
                            }
                        },
                    )
                    return
                self._send(200, outer._completion(i, reply, body))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after-ms", "10")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @staticmethod
    def _completion(i: int, reply: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        calls = [
            {
                "id": f"call_{i}_{j}",
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            for j, (name, args) in enumerate(reply.get("tool_calls", []))
        ]
        message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-{i}",
            "object": "chat.completion",
            "created": 1_700_000_000 + i,
            "model": body.get("model", "scripted"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
            ],
            "usage": {
                "prompt_tokens": 100 + i,
                "completion_tokens": 10 + i,
                "total_tokens": 110 + 2 * i,
            },
        }

    @property
    def base_url(self) -> str:
        """The server's ``/v1`` URL on 127.0.0.1."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol, scripted per test.

Used by the openai and vllm backend tests (and, as a process, by the fake ``vllm`` executable).
Each POST /v1/chat/completions pops the next scripted ``Reply``; when the script is empty the
``default`` reply is used. Every request body and its headers are kept for assertions.

Fault classes real servers produce, one helper each: ``error`` (any HTTP status), ``raw`` (a
body that is not JSON: an HTML 502 page, truncated JSON), ``no_choices`` (``"choices": []``),
``completion(None)`` (null content), ``cut_off`` (``finish_reason: "length"``) and
``Reply(delay_s=...)`` (a hang past the client's timeout).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response: HTTP status, JSON body (or ``raw`` bytes), and an optional delay before answering."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    raw: bytes | None = None
    content_type: str = "application/json"


def completion(
    content: str | None = None,
    *,
    model: str = "stub-model",
    tool_call: tuple[str, dict[str, Any]] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
    usage: tuple[int, int] = (11, 7),
) -> Reply:
    """A successful chat completion with text ``content`` or a tool call ``(name, arguments)``."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    finish = "stop"
    if tool_call is not None:
        name, arguments = tool_call
        message["content"] = None
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        ]
        finish = "tool_calls"
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return Reply(
        body={
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
        }
    )


def cut_off(content: str, *, usage: tuple[int, int] = (11, 48)) -> Reply:
    """A completion stopped by the length limit (``finish_reason: "length"``)."""
    reply = completion(content, usage=usage)
    reply.body["choices"][0]["finish_reason"] = "length"
    return reply


def no_choices() -> Reply:
    """A 200 completion whose ``choices`` list is empty."""
    reply = completion("unused")
    reply.body["choices"] = []
    return reply


def raw(data: bytes, *, status: int = 200, content_type: str = "application/json") -> Reply:
    """A body sent verbatim: an HTML error page, truncated JSON, garbage."""
    return Reply(status=status, raw=data, content_type=content_type)


def error(status: int, message: str, code: str | None = None, err_type: str = "invalid_request_error") -> Reply:
    """An OpenAI-style error response."""
    return Reply(status=status, body={"error": {"message": message, "type": err_type, "code": code, "param": None}})


def token_logprobs(pieces: list[tuple[str, float, dict[str, float]]]) -> list[dict[str, Any]]:
    """Logprobs content: one ``(token, logprob, {alternative: logprob})`` per generated token."""
    return [
        {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top.items()],
        }
        for token, logprob, top in pieces
    ]


class StubOpenAIServer:
    """Scripted OpenAI-compatible server in a background thread. Use as a context manager."""

    def __init__(self, port: int = 0, default: Reply | None = None) -> None:
        self.script: list[Reply] = []
        self.default = default or completion("ok")
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

            def _send(self, status: int, body: dict[str, Any], data: bytes | None = None,
                      content_type: str = "application/json") -> None:
                data = json.dumps(body).encode() if data is None else data
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (timeout test)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/health":
                    self._send(200, {})
                elif self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": stub.default.body.get("model", "stub"), "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    reply = stub.script.pop(0) if stub.script else stub.default
                if reply.delay_s:
                    stub._stop.wait(reply.delay_s)
                self._send(reply.status, reply.body, reply.raw, reply.content_type)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        """Append replies to the script."""
        with self._lock:
            self.script.extend(replies)

    def start(self) -> StubOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> None:
    """Run as a process (the fake ``vllm serve MODEL --port P`` in the vllm tests)."""
    model = argv[argv.index("serve") + 1]
    port = int(argv[argv.index("--port") + 1])
    server = StubOpenAIServer(port, default=completion("served by fake vllm", model=model))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(float(dict(zip(argv, argv[1:])).get("--startup-delay", "0")))
    server.start()
    try:
        while True:
            time.sleep(0.2)
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])

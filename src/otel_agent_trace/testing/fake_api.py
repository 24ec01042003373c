"""A local fake of the Anthropic Messages API for tests, demos and benchmarks.

It is a real HTTP server (standard library only) that the real ``anthropic`` client talks to through
``base_url``, so instrumentation is exercised through the SDK's own transport, retries, streaming and
error mapping instead of through mocks. Answers are scripted: each HTTP request to a messages route
consumes one :class:`Reply`, :class:`Fault` or :class:`Recorded` from a queue, falls back to a :data:`Responder`
callable, and finally to ``text_reply("ok")``.

Routes: ``POST /v1/messages`` (any query string, e.g. the beta client's ``?beta=true``),
``POST /v1/messages/count_tokens``, Vertex ``.../publishers/anthropic/models/{model}:rawPredict`` and
``:streamRawPredict`` (with or without a ``/v1`` prefix, since the SDK's default Vertex base URL ends
in ``/v1``), and Bedrock ``/model/{model}/invoke`` and ``/invoke-with-response-stream`` (AWS binary
event-stream framing). Everything else is a 404 with the API's error JSON shape.

    with FakeMessagesAPI([tool_reply(("get_weather", {"city": "Paris"})), text_reply("Sunny")]) as api:
        client = anthropic.Anthropic(api_key="test", base_url=api.base_url, max_retries=0)
        ...  # run the agent loop; then inspect api.requests
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_RECORDED_REQUESTS", "FakeMessagesAPI", "Fault", "Recorded", "RecordedRequest", "Reply", "Responder",
           "ScriptItem", "aws_event_stream", "text_reply", "tool_reply"]

#: ``FakeMessagesAPI.requests`` keeps only this many of the most recent requests, so long benchmarks
#: and soak runs do not grow memory without bound.
MAX_RECORDED_REQUESTS = 1000

# Bodies above this are refused rather than buffered: the fake must not be a memory hazard.
_MAX_BODY_BYTES = 64 * 1024 * 1024

_DEFAULT_USAGE: dict[str, int] = {"input_tokens": 12, "output_tokens": 8, "cache_read_input_tokens": 0,
                                  "cache_creation_input_tokens": 0}

# Tool ids are minted when a reply is built, before any server is involved, so the counter is global.
_tool_ids = itertools.count(1)


@dataclass
class Reply:
    """One scripted successful message.

    ``content`` holds Messages API content blocks exactly as the API would return them. ``usage`` is
    merged over sensible defaults when answering, so a partial dict (say only ``input_tokens``) still
    yields a complete usage object. ``model`` and ``id`` default to the request's model and a
    generated ``msg_fake_<n>``. ``delay`` (seconds) is waited before answering, to provoke client
    timeouts or to make durations measurable; stopping the server cuts the wait short.
    """

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    usage: dict[str, Any] = field(default_factory=lambda: dict(_DEFAULT_USAGE))
    model: str | None = None
    id: str | None = None
    delay: float = 0.0


def text_reply(text: str, *, usage: dict[str, Any] | None = None, stop_reason: str = "end_turn",
               **kw: Any) -> Reply:
    """A reply with a single text block; ``kw`` goes to :class:`Reply` (model, id, delay)."""
    return Reply(content=[{"type": "text", "text": text}], stop_reason=stop_reason,
                 usage={**_DEFAULT_USAGE, **(usage or {})}, **kw)


def tool_reply(*tool_uses: tuple[str, dict[str, Any]] | dict[str, Any], text: str | None = None,
               usage: dict[str, Any] | None = None, **kw: Any) -> Reply:
    """A reply asking for tool calls, with ``stop_reason="tool_use"`` unless ``kw`` overrides it.

    Each tool use is ``(name, input)`` or a dict with ``name``, ``input`` and optionally ``id``;
    missing ids become ``toolu_fake_<n>``. ``text`` becomes a leading text block, the way models
    usually narrate before calling tools.
    """
    if not tool_uses:
        raise ValueError("tool_reply() needs at least one tool use")
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text is not None else []
    for use in tool_uses:
        if isinstance(use, tuple):
            name, tool_input = use
            use = {"name": name, "input": tool_input}
        content.append({"type": "tool_use", "id": use.get("id") or f"toolu_fake_{next(_tool_ids)}",
                        "name": use["name"], "input": dict(use.get("input") or {})})
    kw.setdefault("stop_reason", "tool_use")
    return Reply(content=content, usage={**_DEFAULT_USAGE, **(usage or {})}, **kw)


FaultKind = Literal["rate_limit", "overloaded", "server_error", "malformed_json", "truncated_stream",
                    "bad_request"]

# kind -> (HTTP status, API error type); the SDK maps status codes to its exception classes.
_FAULT_STATUS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "rate_limit_error"),
    "overloaded": (529, "overloaded_error"),
    "server_error": (500, "api_error"),
    "bad_request": (400, "invalid_request_error"),
}


@dataclass
class Fault:
    """One scripted failure, consumed like a :class:`Reply`.

    The SDK retries 429/529/500 by itself, so a fault followed by a reply exercises its retry loop.
    ``retry_after`` (seconds) is sent as ``retry-after`` and ``retry-after-ms``; the SDK honours
    values > 0 and otherwise backs off ~0.5 s, so tests wanting speed pass a small positive value.
    ``malformed_json`` answers 200 with a body that is not JSON (not SSE-parsable for streams);
    ``truncated_stream`` starts ``reply`` and cuts the connection mid-body.
    """

    kind: FaultKind
    retry_after: float | None = None
    message: str | None = None
    reply: Reply | None = None

    @classmethod
    def rate_limit(cls, retry_after: float = 0) -> Fault:
        return cls("rate_limit", retry_after=retry_after)

    @classmethod
    def overloaded(cls, retry_after: float | None = None) -> Fault:
        return cls("overloaded", retry_after=retry_after)

    @classmethod
    def server_error(cls, retry_after: float | None = None) -> Fault:
        return cls("server_error", retry_after=retry_after)

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls("malformed_json")

    @classmethod
    def truncated_stream(cls, reply: Reply | None = None) -> Fault:
        return cls("truncated_stream", reply=reply)

    @classmethod
    def bad_request(cls, message: str = "fake_api: scripted invalid request") -> Fault:
        return cls("bad_request", message=message)


@dataclass
class Recorded:
    """One response sent exactly as given: status, content type and body bytes, for replaying responses
    recorded from the real API. Stream content types (SSE, AWS event stream) go out with chunked framing,
    like the real API's streams; anything else with a content length."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


ScriptItem = Reply | Fault | Recorded
_SCRIPT_TYPES = (Reply, Fault, Recorded)
#: Called with the request body (normalised: ``model`` filled from Vertex/Bedrock paths, ``stream``
#: set) when the scripted queue is empty; returns what to answer. It runs on a server thread.
Responder = Callable[[dict[str, Any]], ScriptItem]


@dataclass
class RecordedRequest:
    """One request as received: header names lower-cased, body parsed as JSON (None if absent or bad)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


_VERTEX_RE = re.compile(
    r"^(?:/v1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/]+):(rawPredict|streamRawPredict)$")
_BEDROCK_RE = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream)$")


@dataclass
class _Route:
    kind: Literal["messages", "count_tokens"]
    platform: Literal["anthropic", "vertex", "bedrock"] = "anthropic"
    model: str | None = None
    stream: bool | None = None  # None: decided by the body's "stream"


def _route(path: str) -> _Route | None:
    if path in ("/v1/messages", "/v1/messages/"):
        return _Route("messages")
    if path == "/v1/messages/count_tokens":
        return _Route("count_tokens")
    if m := _VERTEX_RE.match(path):
        model = unquote(m.group(1))
        if model == "count-tokens":
            return _Route("count_tokens", "vertex")
        return _Route("messages", "vertex", model, True if m.group(2) == "streamRawPredict" else None)
    if m := _BEDROCK_RE.match(path):
        return _Route("messages", "bedrock", unquote(m.group(1)), m.group(2) != "invoke")
    return None


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _chunks(s: str, parts: int = 3) -> list[str]:
    # Several deltas per block make clients exercise their accumulation logic, as with the real API.
    if not s:
        return []
    size = max(1, -(-len(s) // parts))
    return [s[i:i + size] for i in range(0, len(s), size)]


def _stream_events(msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The Messages API streaming event sequence for a complete message."""
    usage = msg["usage"]
    start_usage = {**usage, "output_tokens": 1}
    yield {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None,
                                                "stop_sequence": None, "usage": start_usage}}
    if not msg["content"]:
        yield {"type": "ping"}
    for index, block in enumerate(msg["content"]):
        btype = block.get("type")
        deltas: list[dict[str, Any]] = []
        if btype == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block.get("text", ""))]
        elif btype in ("tool_use", "server_tool_use"):
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": c}
                      for c in _chunks(json.dumps(block.get("input", {})))]
        elif btype == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block.get("thinking", ""))]
            deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
        else:  # redacted_thinking, tool results of server tools...: the real API sends them whole
            start = block
        yield {"type": "content_block_start", "index": index, "content_block": start}
        if index == 0:
            yield {"type": "ping"}
        for delta in deltas:
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
    # Current API versions repeat the cumulative input/cache counts on message_delta.
    yield {"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
           "usage": usage}
    yield {"type": "message_stop"}


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _aws_frame(event: dict[str, Any]) -> bytes:
    """One AWS event-stream frame carrying ``event``, as Bedrock's InvokeModelWithResponseStream sends."""
    headers = b""
    for name, value in ((":event-type", "chunk"), (":content-type", "application/json"),
                        (":message-type", "event")):
        n, v = name.encode(), value.encode()
        headers += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v  # 7: string
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def aws_event_stream(events: Iterable[dict[str, Any]]) -> bytes:
    """Bedrock's InvokeModelWithResponseStream body carrying ``events``, for :class:`Recorded` replies."""
    return b"".join(_aws_frame(event) for event in events)


def _count_tokens(body: dict[str, Any]) -> int:
    # A stable rough estimate (~4 characters a token), not a tokenizer: tests need determinism only.
    text = json.dumps([body.get("system"), body.get("messages"), body.get("tools")], sort_keys=True)
    return max(1, len(text) // 4)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must never block interpreter exit
    request_queue_size = 1024  # the default backlog of 5 makes bursts of 64 clients stall on SYN retries
    api: FakeMessagesAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeouts, truncation tests) is normal here; anything else is a bug.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK pools connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # per-request logging costs more than the answer in benchmarks

    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, add=False)

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(8)
                if len(data) > _MAX_BODY_BYTES:
                    return None
        length = int(self.headers.get("content-length") or 0)
        if not 0 <= length <= _MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        api = self.server.api
        rid = api._next_id("req")
        try:
            raw = self._read_body()
        except ValueError:
            raw = None
        body: Any = None
        bad_json = False
        if raw and raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        path = urlsplit(self.path).path
        api._record(RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                    body))
        route = _route(path) if self.command == "POST" else None
        if raw is None:  # framing is unknown now, so the connection cannot be reused
            self.close_connection = True
            self._send_json(400, _error_body("invalid_request_error", "bad request framing"), rid)
        elif route is None:
            self._send_json(404, _error_body("not_found_error", f"fake_api: no route {self.command} {path}"),
                            rid)
        elif bad_json or not isinstance(body, dict):
            self._send_json(400, _error_body("invalid_request_error", "body is not a JSON object"), rid)
        elif route.kind == "count_tokens":
            self._send_json(200, {"input_tokens": _count_tokens(body)}, rid)
        else:
            self._answer(route, body, rid)

    def _answer(self, route: _Route, body: dict[str, Any], rid: str) -> None:
        api = self.server.api
        stream = route.stream if route.stream is not None else body.get("stream") is True
        request = {**body, "stream": stream}
        if route.model is not None:
            request.setdefault("model", route.model)
        try:
            item = api._next_item(request)
        except Exception as exc:  # a broken responder should fail the call, not kill the server thread
            self._send_json(500, _error_body("api_error", f"fake_api responder raised {exc!r}"), rid)
            return
        if isinstance(item, Recorded):
            self._send_recorded(item, rid)
            return
        if isinstance(item, Fault) and item.kind in _FAULT_STATUS:
            status, etype = _FAULT_STATUS[item.kind]
            headers: dict[str, str] = {}
            if item.retry_after is not None:
                headers = {"retry-after": f"{item.retry_after:g}",
                           "retry-after-ms": f"{item.retry_after * 1000:g}"}
            message = item.message or f"fake_api: scripted {item.kind}"
            self._send_json(status, _error_body(etype, message), rid, headers)
            return
        reply = item.reply if isinstance(item, Fault) else item
        if reply is None:
            reply = text_reply("this answer is cut off before it ends")
        if isinstance(item, Reply) and item.delay > 0 and api._stopping.wait(item.delay):
            self.close_connection = True
            return
        msg = {"id": reply.id or api._next_id("msg"), "type": "message", "role": "assistant",
               "model": reply.model or request.get("model") or "claude-fake", "content": reply.content,
               "stop_reason": reply.stop_reason, "stop_sequence": None,
               "usage": {**_DEFAULT_USAGE, **reply.usage}}
        fault = item.kind if isinstance(item, Fault) else None
        if not stream:
            data = json.dumps(msg).encode()
            if fault == "malformed_json":
                self._send_raw(200, "application/json", data[: len(data) // 2] + b"<<not json", rid)
            elif fault == "truncated_stream":
                self._send_raw(200, "application/json", data, rid, cut=len(data) // 2)
            else:
                self._send_raw(200, "application/json", data, rid)
            return
        bedrock = route.platform == "bedrock"
        encode = _aws_frame if bedrock else _sse
        ctype = "application/vnd.amazon.eventstream" if bedrock else "text/event-stream"
        # Chunked framing keeps the connection reusable and makes a cut-off stream detectable as such.
        self._send_head(200, ctype, rid, {"transfer-encoding": "chunked", "cache-control": "no-cache"})
        for n, event in enumerate(_stream_events(msg)):
            if fault == "truncated_stream" and n == 3:  # message_start, block start, ping: then cut
                self._write_chunk(encode(event)[:20])
                self.close_connection = True
                return
            if fault == "malformed_json":
                self._write_chunk(b"event: message_start\ndata: {\"type\": \"message_start\", <<not json\n\n")
                break
            self._write_chunk(encode(event))
        self.wfile.write(b"0\r\n\r\n")

    def _send_recorded(self, item: Recorded, rid: str) -> None:
        if item.content_type.startswith(("text/event-stream", "application/vnd.amazon.eventstream")):
            self._send_head(item.status, item.content_type, rid,
                            {**item.headers, "transfer-encoding": "chunked", "cache-control": "no-cache"})
            if item.body:
                self._write_chunk(item.body)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send_raw(item.status, item.content_type, item.body, rid, headers=item.headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and headers get the API's JSON error shape instead of stdlib HTML.
        self.close_connection = True
        etype = "invalid_request_error" if code < 500 else "api_error"
        self._send_json(code, _error_body(etype, message or explain or "bad request"),
                        self.server.api._next_id("req"))

    def _send_json(self, status: int, payload: dict[str, Any], rid: str,
                   headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, "application/json", json.dumps(payload).encode(), rid, headers=headers)

    def _send_head(self, status: int, ctype: str, rid: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("request-id", rid)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_raw(self, status: int, ctype: str, data: bytes, rid: str, *, cut: int | None = None,
                  headers: dict[str, str] | None = None) -> None:
        headers = {**(headers or {}), "content-length": str(len(data))}
        if self.close_connection or cut is not None:
            headers["connection"] = "close"
        self._send_head(status, ctype, rid, headers)
        if cut is not None:  # fewer bytes than announced, then hang up: the client sees a broken body
            self.wfile.write(data[:cut])
            self.close_connection = True
        else:
            self.wfile.write(data)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class FakeMessagesAPI:
    """A scripted Anthropic Messages API on a local port; usable as a context manager.

    Thread-safe: any number of clients may call it concurrently; script items are handed out in
    order, one per messages request (``count_tokens`` and unknown routes consume nothing). When the
    queue is empty the responder answers, and without one every request gets ``text_reply("ok")``.
    ``requests`` records every HTTP request received, trimmed to the last
    :data:`MAX_RECORDED_REQUESTS` to bound memory.
    """

    def __init__(self, script: Iterable[ScriptItem] | Responder | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._queue: deque[ScriptItem] = deque()
        self._responder: Responder | None = None
        self._lock = threading.Lock()
        self._ids = {"req": itertools.count(1), "msg": itertools.count(1)}
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()  # one per connection; pruned as they end
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if callable(script) and not isinstance(script, _SCRIPT_TYPES):
            self._responder = script
        elif script is not None:
            self.enqueue(*script)

    @property
    def base_url(self) -> str:
        """``http://host:port`` to pass as the client's ``base_url``; only known once started."""
        if self._server is None:
            raise RuntimeError("FakeMessagesAPI.base_url is only known after start()")
        return f"http://{self.host}:{self.port}"

    def enqueue(self, *items: ScriptItem) -> None:
        """Append items to the script; each is consumed by one messages request, in order."""
        for item in items:
            if not isinstance(item, _SCRIPT_TYPES):
                raise TypeError(f"script items must be Reply, Fault or Recorded, got {type(item).__name__}")
        with self._lock:
            self._queue.extend(items)

    def start(self) -> FakeMessagesAPI:
        """Bind and serve on a daemon thread; returns self so ``api = FakeMessagesAPI().start()`` works."""
        if self._server is not None:
            raise RuntimeError("FakeMessagesAPI already started")
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.api = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"fake-anthropic-api:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut delayed replies short and close open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # pooled client connections would otherwise stay open to a dead server
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the thread of every connection has ended, for up to ``timeout`` seconds; whether all did.

        A connection's thread ends once its client closes it (close the clients first). Until then, and
        for a moment after the connection is closed, that thread and what it holds are live objects: a
        test that counts live objects waits here first.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._handlers = {handler for handler in self._handlers if handler.is_alive()}
            return not self._handlers

    def __enter__(self) -> FakeMessagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Used by the request handler.
    def _next_id(self, kind: str) -> str:
        with self._lock:
            return f"{kind}_fake_{next(self._ids[kind])}"

    def _next_item(self, request: dict[str, Any]) -> ScriptItem:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self._responder is None:
            return text_reply("ok")
        item = self._responder(request)  # outside the lock: responders may be slow or re-enter
        if not isinstance(item, _SCRIPT_TYPES):
            raise TypeError(f"responder returned {type(item).__name__}, expected Reply, Fault or Recorded")
        return item

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > MAX_RECORDED_REQUESTS:
                del self.requests[: len(self.requests) - MAX_RECORDED_REQUESTS]

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if not add:
                self._connections.discard(conn)
                return
            self._connections.add(conn)
            self._handlers = {handler for handler in self._handlers if handler.is_alive()}
            self._handlers.add(threading.current_thread())
